// From backlog to a raw replica count: the smoothing window over Stats samples, the per-step
// peak for RL's saw-tooth, and clamp(ceil(backlog / target), min, max) with the HPA's tolerance.
import { type StatsSample } from "./types.js";

/**
 * Replicas for a backlog, as the HPA's AverageValue metric: unchanged while backlog per worker
 * is within `tolerance` of the target; otherwise ceil(backlog / target), clamped to [min, max].
 */
export function replicasForBacklog(
  backlog: number,
  current: number,
  opts: { targetBacklogPerWorker: number; tolerance: number; minReplicas: number; maxReplicas: number },
): number {
  const clamp = (n: number) => Math.min(opts.maxReplicas, Math.max(opts.minReplicas, n));
  if (current > 0) {
    const ratio = backlog / (opts.targetBacklogPerWorker * current);
    if (Math.abs(ratio - 1) <= opts.tolerance) return clamp(current);
  }
  return clamp(Math.ceil(backlog / opts.targetBacklogPerWorker));
}

/** Mean backlog of the samples taken within the last `windowSeconds` (the newest always counts). */
export function smoothedBacklog(samples: StatsSample[], now: number, windowSeconds: number): number {
  if (samples.length === 0) return 0;
  const cutoff = now - windowSeconds * 1000;
  const inWindow = samples.filter((s) => s.at > cutoff);
  const used = inWindow.length > 0 ? inWindow : [samples[samples.length - 1]!];
  return used.reduce((sum, s) => sum + s.backlog, 0) / used.length;
}

/** Samples to keep for smoothing: those inside the window. */
export function trimSamples(samples: StatsSample[], now: number, windowSeconds: number): StatsSample[] {
  const cutoff = now - windowSeconds * 1000;
  return samples.filter((s) => s.at > cutoff);
}
