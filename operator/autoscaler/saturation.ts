// Engine-saturation detection: when more workers stop buying more episodes per second (the
// inference engine is the bottleneck), say how many workers the engine can actually keep busy.
// Pure: observations in, a cap out. Backlog-only scalers (HPA, KEDA) cannot see this.
import { type SaturationOptions, type StatsSample } from "./types.js";

export interface ThroughputPoint {
  at: number;
  workers: number;
  episodesPerSecond: number;
  llmSecondsPerTurn: number;
}

export interface SaturationState {
  points: ThroughputPoint[];
  workers: number;
  workersSince: number;
}

export const initialSaturation = (): SaturationState => ({ points: [], workers: -1, workersSince: 0 });

/**
 * Keeps a sample as a throughput point only when it measures what the workers can do: a rollout
 * in progress, every worker with work (backlog >= workers x episodesPerWorker), and a worker count
 * steady for `settleSeconds` (the hub's episodes/s is a trailing window; right after a scale it
 * still reflects the old count).
 */
export function observeThroughput(
  s: SaturationState,
  sample: StatsSample,
  episodesPerWorker: number,
  opts: SaturationOptions,
): SaturationState {
  const workersSince = sample.activeWorkers === s.workers ? s.workersSince : sample.at;
  const cutoff = sample.at - opts.memorySeconds * 1000;
  const points = s.points.filter((p) => p.at > cutoff);
  const usable =
    sample.phase === "Rollout" &&
    sample.activeWorkers > 0 &&
    sample.episodesPerSecond > 0 &&
    sample.backlog >= sample.activeWorkers * episodesPerWorker &&
    sample.at - workersSince >= opts.settleSeconds * 1000;
  if (usable) {
    points.push({
      at: sample.at,
      workers: sample.activeWorkers,
      episodesPerSecond: sample.episodesPerSecond,
      llmSecondsPerTurn: sample.llmSecondsPerTurn,
    });
  }
  return { points, workers: sample.activeWorkers, workersSince };
}

export interface SaturationVerdict {
  /** Most workers worth running: ceil(plateau episodes/s / episodes/s of one unsaturated worker). */
  cap: number;
  plateauEpisodesPerSecond: number;
  perWorkerEpisodesPerSecond: number;
  message: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/**
 * Saturated when the largest pool seen runs well below the per-worker rate of the most
 * efficient pool seen (by `efficiencyDrop`) and, where the hub reports engine latency, its
 * seconds per turn rose by `latencyRise` (episodes getting longer as the policy learns more
 * turns lowers efficiency too, but leaves per-turn latency alone). Null when not saturated or
 * when fewer than two pool sizes were seen.
 */
export function saturationVerdict(
  s: SaturationState,
  now: number,
  opts: SaturationOptions,
): SaturationVerdict | null {
  if (!opts.enabled) return null;
  const cutoff = now - opts.memorySeconds * 1000;
  const byWorkers = new Map<number, ThroughputPoint[]>();
  for (const p of s.points) {
    if (p.at <= cutoff) continue;
    byWorkers.set(p.workers, [...(byWorkers.get(p.workers) ?? []), p]);
  }
  if (byWorkers.size < 2) return null;
  const groups = [...byWorkers.entries()].map(([workers, ps]) => {
    const llm = ps.map((p) => p.llmSecondsPerTurn).filter((x) => x > 0);
    const eps = median(ps.map((p) => p.episodesPerSecond));
    return { workers, eps, perWorker: eps / workers, llm: llm.length > 0 ? median(llm) : 0 };
  });
  const best = groups.reduce((a, b) => (b.perWorker > a.perWorker ? b : a));
  const top = groups.reduce((a, b) => (b.workers > a.workers ? b : a));
  if (top.workers <= best.workers) return null;
  const efficiencyLow = top.perWorker < (1 - opts.efficiencyDrop) * best.perWorker;
  const latencyKnown = top.llm > 0 && best.llm > 0;
  const latencyHigh = !latencyKnown || top.llm >= (1 + opts.latencyRise) * best.llm;
  if (!efficiencyLow || !latencyHigh) return null;
  const plateau = Math.max(...groups.map((g) => g.eps));
  // The small epsilon keeps 10.000000001 from becoming 11 workers.
  const cap = Math.max(best.workers, Math.ceil(plateau / best.perWorker - 1e-6));
  const latency = latencyKnown
    ? `, engine ${top.llm.toFixed(2)} s/turn vs ${best.llm.toFixed(2)} s/turn`
    : "";
  return {
    cap,
    plateauEpisodesPerSecond: plateau,
    perWorkerEpisodesPerSecond: best.perWorker,
    message:
      `throughput stops growing at ${cap} workers: ${top.workers} workers gave ${top.eps.toFixed(2)} episodes/s, ` +
      `${best.workers} gave ${best.eps.toFixed(2)}${latency}`,
  };
}
