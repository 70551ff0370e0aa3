// Turning finished groups into what the training loop receives: a Batch with per-turn
// advantages, or an evaluation summary. Pure: reads the groups' scored results and changes
// nothing (the book drops them when the caller marks the groups served).
import { type AdvantageOptions, advantages } from "./advantage.js";
import { type GroupRec } from "./book.js";
import { type Batch } from "./samples.js";

export interface EvalResult {
  policyVersion: number;
  /** Mean exact match of the final answers (the held-out accuracy in Stats). */
  accuracy: number;
  f1: number;
  /** Episodes scored; groups dropped for infrastructure failures are not counted. */
  scored: number;
  dropped: number;
}

/** Builds the batch of complete groups from their scored results. */
export function assembleBatch(
  groups: readonly GroupRec[],
  meta: { step: number; policyVersion: number; short: boolean },
  opts: AdvantageOptions,
): Batch {
  const rewarded = groups.map((g) =>
    g.tasks.map((t) => ({ turnRewards: t.result!.score.turnRewards, total: t.result!.score.total })),
  );
  const adv = advantages(rewarded, opts);
  let sum = 0;
  let n = 0;
  const out = groups.map((g, gi) => ({
    groupId: g.id,
    questionIndex: g.question.index,
    question: g.question.prompt,
    trajectories: g.tasks.map((t, ti) => {
      const r = t.result!;
      sum += r.score.total;
      n++;
      return {
        trajectory: r.trajectory,
        turnRewards: r.score.turnRewards,
        reward: r.score.total,
        answer: r.score.answer,
        advantages: adv[gi]![ti]!,
      };
    }),
  }));
  return { ...meta, groups: out, rewardMean: n > 0 ? sum / n : 0 };
}

/** Mean EM and F1 over the scored episodes of an evaluation's groups. */
export function summarizeEval(groups: Iterable<GroupRec>, policyVersion: number): EvalResult {
  let em = 0;
  let f1 = 0;
  let scored = 0;
  let dropped = 0;
  for (const g of groups) {
    if (g.status === "dropped") {
      dropped++;
      continue;
    }
    for (const t of g.tasks) {
      em += t.result!.score.answer.exactMatch;
      f1 += t.result!.score.answer.f1;
      scored++;
      t.result = undefined;
    }
  }
  return { policyVersion, accuracy: scored ? em / scored : 0, f1: scored ? f1 / scored : 0, scored, dropped };
}
