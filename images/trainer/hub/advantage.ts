// Advantages for the learner, pure functions over per-turn rewards (table-tested in test/hub):
// REINFORCE++ step level (discounted returns over turns, whitened over the whole batch) and GRPO
// (the trajectory's reward minus its group's mean, optionally over the group's std), plus the
// dynamic-sampling test for whether a group carries any signal.

export type Algorithm = "reinforce_pp" | "grpo";

export interface AdvantageOptions {
  algorithm: Algorithm;
  /** Discount over turns (REINFORCE++). */
  gamma: number;
  /** GRPO: divide by the group's reward std. */
  normalizeStd: boolean;
}

/** What advantages are computed from: one entry per trajectory, grouped by question. */
export interface RewardedTrajectory {
  turnRewards: readonly number[];
  total: number;
}

const EPS = 1e-6;

/** G_t = r_t + gamma * G_{t+1}. */
export function discountedReturns(rewards: readonly number[], gamma: number): number[] {
  const out = new Array<number>(rewards.length);
  let g = 0;
  for (let t = rewards.length - 1; t >= 0; t--) {
    g = rewards[t]! + gamma * g;
    out[t] = g;
  }
  return out;
}

export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  if (xs.length === 0) return { mean: 0, std: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) * (b - mean), 0) / xs.length;
  return { mean, std: Math.sqrt(variance) };
}

/** REINFORCE++: per-turn discounted returns, whitened over every turn of the batch. */
export function reinforcePlusPlus(
  groups: readonly (readonly RewardedTrajectory[])[],
  gamma: number,
): number[][][] {
  const returns = groups.map((g) => g.map((t) => discountedReturns(t.turnRewards, gamma)));
  const { mean, std } = meanStd(returns.flat(2));
  return returns.map((g) => g.map((r) => r.map((x) => (x - mean) / (std + EPS))));
}

/** GRPO: (R_i - mean_group) [/ (std_group + eps)], the same value on every turn of trajectory i. */
export function grpo(
  groups: readonly (readonly RewardedTrajectory[])[],
  normalizeStd: boolean,
): number[][][] {
  return groups.map((g) => {
    const { mean, std } = meanStd(g.map((t) => t.total));
    return g.map((t) => {
      const a = normalizeStd ? (t.total - mean) / (std + EPS) : t.total - mean;
      return t.turnRewards.map(() => a);
    });
  });
}

/** Per group, per trajectory, per turn advantages for the chosen algorithm. */
export function advantages(
  groups: readonly (readonly RewardedTrajectory[])[],
  opts: AdvantageOptions,
): number[][][] {
  return opts.algorithm === "grpo" ? grpo(groups, opts.normalizeStd) : reinforcePlusPlus(groups, opts.gamma);
}

/** Dynamic sampling: a group whose rewards are all equal has no signal for a group baseline. */
export function hasSignal(totals: readonly number[], tolerance = 1e-9): boolean {
  if (totals.length < 2) return true;
  const first = totals[0]!;
  return totals.some((x) => Math.abs(x - first) > tolerance);
}
