// Engine-saturation detection: when more workers stop buying more episodes per second (the
// inference engine is the bottleneck), say how many workers the engine can actually keep busy.
// Pure: observations in, a cap out. Backlog-only scalers (HPA, KEDA) cannot see this.
//
// Two signals, the first preferred when the hub reports it:
// - Engine latency per turn (engine queueing). Past its knee an engine's throughput is flat, so by
//   Little's law latency grows with the work in flight: w workers seeing latency f times the
//   unloaded level get what w / f unsaturated workers would. Cap = ceil(w / f).
// - Episodes per second against workers, when the hub has no latency: saturated when the largest
//   pool seen runs well below the per-worker rate of the most efficient pool seen. Cap =
//   ceil(plateau episodes/s / per-worker rate).
// Observations are kept for `memorySeconds`, which is what stops the cap from flapping: at the
// cap the engine looks healthy again, and only once the saturated observations expire does the
// pool grow to probe whether the engine has more room (e.g. more inference replicas).
import { type SaturationOptions, type StatsSample } from "./types.js";

export interface ThroughputPoint {
  at: number;
  workers: number;
  episodesPerSecond: number;
  llmSecondsPerTurn: number;
  /** The worker count was steady for `settleSeconds`: the load matches `workers`. */
  settled: boolean;
  /** Every worker had work (backlog >= workers x episodesPerWorker): episodes/s measures capacity. */
  fullDemand: boolean;
}

export interface SaturationState {
  points: ThroughputPoint[];
  workers: number;
  workersSince: number;
  rolloutSince: number | null;
  /** The last cap a verdict gave, and when: bounds the probe once its readings expire. */
  lastCap: { cap: number; at: number } | null;
}

export const initialSaturation = (): SaturationState => ({
  points: [],
  workers: -1,
  workersSince: 0,
  rolloutSince: null,
  lastCap: null,
});

/** How far past the last cap a probe may go. 1.5x reads as saturated again under both signals' defaults. */
export const PROBE_FACTOR = 1.5;

/**
 * Once the saturated readings have expired, the pool may grow to find out whether the engine got
 * room; for one more memory window it grows to at most PROBE_FACTOR x the last cap rather than
 * straight to maxReplicas. Null when there is no recent cap.
 */
export function probeLimit(s: SaturationState, now: number, opts: SaturationOptions): number | null {
  if (!opts.enabled || !s.lastCap || now - s.lastCap.at >= opts.memorySeconds * 1000) return null;
  return Math.ceil(s.lastCap.cap * PROBE_FACTOR);
}

/**
 * Keeps every rollout sample. Only those taken once the worker count has been steady for
 * `settleSeconds` are "settled": the hub's latency and episodes/s are trailing windows, and
 * right after a scale-down they would still show the bigger pool's load and undercount the knee.
 * A low latency is an unloaded reading whenever it was taken, so every sample counts for the
 * baseline. Episodes/s also needs the rollout itself to be that old (or its window straddles the
 * training phase) and every worker busy.
 */
export function observeThroughput(
  s: SaturationState,
  sample: StatsSample,
  episodesPerWorker: number,
  opts: SaturationOptions,
): SaturationState {
  const workersSince = sample.activeWorkers === s.workers ? s.workersSince : sample.at;
  const rolloutSince = sample.phase !== "Rollout" ? null : (s.rolloutSince ?? sample.at);
  const cutoff = sample.at - opts.memorySeconds * 1000;
  const points = s.points.filter((p) => p.at > cutoff);
  const isSettled = (since: number) => sample.at - since >= opts.settleSeconds * 1000;
  if (rolloutSince !== null && sample.activeWorkers > 0) {
    const settled = isSettled(workersSince);
    points.push({
      at: sample.at,
      workers: sample.activeWorkers,
      episodesPerSecond: sample.episodesPerSecond,
      llmSecondsPerTurn: sample.llmSecondsPerTurn,
      settled,
      fullDemand:
        settled &&
        isSettled(rolloutSince) &&
        sample.backlog >= sample.activeWorkers * episodesPerWorker &&
        sample.episodesPerSecond > 0,
    });
  }
  return { ...s, points, workers: sample.activeWorkers, workersSince, rolloutSince };
}

export interface SaturationVerdict {
  /** Most workers worth running. */
  cap: number;
  signal: "latency" | "throughput";
  message: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

// The small epsilon keeps 10.000000001 from becoming 11 workers.
const ceil = (x: number) => Math.max(1, Math.ceil(x - 1e-6));

/** Null when not saturated, or when the observations cannot tell. */
export function saturationVerdict(
  s: SaturationState,
  now: number,
  opts: SaturationOptions,
): SaturationVerdict | null {
  if (!opts.enabled) return null;
  const cutoff = now - opts.memorySeconds * 1000;
  const points = s.points.filter((p) => p.at > cutoff);
  const timed = points.filter((p) => p.llmSecondsPerTurn > 0);
  return timed.length > 0
    ? byLatency(timed, opts)
    : byThroughput(
        points.filter((p) => p.fullDemand),
        opts,
      );
}

function byLatency(points: ThroughputPoint[], opts: SaturationOptions): SaturationVerdict | null {
  const base = Math.min(...points.map((p) => p.llmSecondsPerTurn));
  const queued = points.filter((p) => p.settled && p.llmSecondsPerTurn >= (1 + opts.latencyRise) * base);
  if (queued.length === 0) return null;
  // The most workers any saturated observation justifies: the cap errs toward throughput.
  const worst = queued.reduce((a, b) =>
    b.workers * (base / b.llmSecondsPerTurn) > a.workers * (base / a.llmSecondsPerTurn) ? b : a,
  );
  const cap = ceil((worst.workers * base) / worst.llmSecondsPerTurn);
  return {
    cap,
    signal: "latency",
    message:
      `engine saturated: ${worst.llmSecondsPerTurn.toFixed(2)} s/turn with ${worst.workers} workers vs ` +
      `${base.toFixed(2)} s/turn unloaded; throughput stops growing at ${cap} workers`,
  };
}

function byThroughput(points: ThroughputPoint[], opts: SaturationOptions): SaturationVerdict | null {
  const byWorkers = new Map<number, number[]>();
  for (const p of points)
    byWorkers.set(p.workers, [...(byWorkers.get(p.workers) ?? []), p.episodesPerSecond]);
  if (byWorkers.size < 2) return null;
  const groups = [...byWorkers.entries()].map(([workers, eps]) => {
    const m = median(eps);
    return { workers, eps: m, perWorker: m / workers };
  });
  const best = groups.reduce((a, b) => (b.perWorker > a.perWorker ? b : a));
  const top = groups.reduce((a, b) => (b.workers > a.workers ? b : a));
  if (top.workers <= best.workers || top.perWorker >= (1 - opts.efficiencyDrop) * best.perWorker) return null;
  const plateau = Math.max(...groups.map((g) => g.eps));
  const cap = Math.max(best.workers, ceil(plateau / best.perWorker));
  return {
    cap,
    signal: "throughput",
    message:
      `engine saturated: ${top.workers} workers gave ${top.eps.toFixed(2)} episodes/s, ${best.workers} gave ` +
      `${best.eps.toFixed(2)}; throughput stops growing at ${cap} workers`,
  };
}
