// Progress of a local run, read from the hub's Stats (gRPC) and the trainer's /metrics: pure
// formatting of the live line, and the episode outcome counts parsed from Prometheus text.
import { type l0 } from "../lib/proto.js";

export interface ProgressState {
  maxSteps: number;
  startedMs: number;
  /** Step and time when this process first saw the run (a resumed run starts mid-way). */
  firstStep: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** Pure: seconds left, from the pace of the steps done since this process started. */
export function eta(step: number, st: ProgressState, nowMs: number): number {
  const done = step - st.firstStep;
  if (done <= 0) return NaN;
  return ((nowMs - st.startedMs) / 1000 / done) * (st.maxSteps - step);
}

const PHASE: Record<number, string> = { 1: "waiting", 2: "rollout", 3: "training", 4: "done" };

/** Pure: the one-line progress display. */
export function progressLine(s: l0.v1.IStatsResponse, st: ProgressState, nowMs: number): string {
  const step = Number(s.step ?? 0);
  const acc =
    s.evalAccuracy === null || s.evalAccuracy === undefined || Number(s.evalAccuracy) < 0
      ? "-"
      : `${(Number(s.evalAccuracy) * 100).toFixed(1)}%`;
  return [
    `step ${step}/${st.maxSteps}`,
    `${PHASE[Number(s.phase ?? 0)] ?? "starting"}`,
    `reward ${Number(s.rewardMean ?? 0).toFixed(3)}`,
    `held-out ${acc}`,
    `${Number(s.episodesPerSecond ?? 0).toFixed(2)} ep/s`,
    `backlog ${Number(s.backlog ?? 0)}`,
    `elapsed ${formatDuration((nowMs - st.startedMs) / 1000)}`,
    `ETA ${formatDuration(eta(step, st, nowMs))}`,
  ].join(" | ");
}

/** Pure: `l0_episodes_total{outcome="x"} n` lines -> { x: n }. */
export function episodeOutcomes(metricsText: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of metricsText.split("\n")) {
    const m = /^l0_episodes_total\{([^}]*)\}\s+([0-9.eE+-]+)/.exec(line);
    if (!m) continue;
    const outcome = /outcome="([^"]*)"/.exec(m[1]!)?.[1];
    if (outcome) out[outcome] = (out[outcome] ?? 0) + Number(m[2]);
  }
  return out;
}
