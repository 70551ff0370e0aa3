// Replays workloads through the autoscaler and a model of the system (test/autoscaler/model.ts)
// and, side by side, through always-at-max (maxReplicas = 2 x the engine's knee). Reports
// throughput and worker-pod-seconds as fractions of always-at-max and the number of scale
// changes, for the default behaviour and each option. The model is deterministic: one run each.
// Primary model: the ("rate"); the "episodes" model (synchronous tail) is a sensitivity check.
import { autoscaler, fixed, simulate, type SystemParams, type Workload } from "../autoscaler/model.js";
import { config } from "../autoscaler/builders.js";
import { type AutoscalingConfig } from "../../operator/autoscaler/types.js";
import { DEFAULT_SCALE_DOWN } from "../autoscaler/builders.js";
import { emit, round } from "./stats.js";

const KNEE = 10;
const MAX = 2 * KNEE;
const POLL = 10;
const system = (mode: SystemParams["mode"]): SystemParams => ({
  mode,
  episodesPerWorker: 8,
  workerEpisodesPerSecond: 0.2,
  engineEpisodesPerSecond: 0.2 * KNEE,
  podStartSeconds: 20,
  llmSecondsPerTurn: 2,
});

const HALF_HOUR = 1800;
const workloads: Workload[] = [
  // 120 episodes a step: 60 s at the engine's full speed, then 30 s of training.
  { name: "sawtooth", quietSeconds: 0, batch: 120, trainSeconds: 30, durationSeconds: HALF_HOUR },
  // The same rollouts with 3-minute training phases (a bigger model, or a slower learner).
  { name: "long_training", quietSeconds: 0, batch: 120, trainSeconds: 180, durationSeconds: HALF_HOUR },
  // A sustained backlog (asynchronous rollouts), starting after a quiet minute.
  { name: "sustained", quietSeconds: 60, batch: 1e6, trainSeconds: 0, durationSeconds: HALF_HOUR },
];

const base = { minReplicas: 1, maxReplicas: MAX, pollingIntervalSeconds: POLL };
const configs: Record<string, AutoscalingConfig> = {
  default: config(base),
  step_peak: config({ ...base, sawtooth: { sizeFrom: "StepPeak" } }),
  release_in_training: config({ ...base, sawtooth: { releaseDuringTraining: true } }),
  step_peak_release: config({ ...base, sawtooth: { sizeFrom: "StepPeak", releaseDuringTraining: true } }),
  // A scale-down window shorter than one rollout + training cycle: Backlog sizing flaps with the
  // saw-tooth, StepPeak sizing does not.
  short_window: config({
    ...base,
    behavior: { scaleDown: { ...DEFAULT_SCALE_DOWN, stabilizationWindowSeconds: 60 } },
  }),
  short_window_step_peak: config({
    ...base,
    behavior: { scaleDown: { ...DEFAULT_SCALE_DOWN, stabilizationWindowSeconds: 60 } },
    sawtooth: { sizeFrom: "StepPeak" },
  }),
  // What the HPA or KEDA would do with the same backlog metric and behavior: no saturation signal.
  backlog_only: config({ ...base, saturation: { enabled: false } }),
};

interface Figures {
  throughput_ratio: number;
  pod_seconds_ratio: number;
  scale_changes: number;
}

function runModel(mode: SystemParams["mode"]) {
  const sys = system(mode);
  const out: Record<string, Record<string, Figures>> = {};
  for (const w of workloads) {
    const ceiling = simulate(sys, w, fixed(MAX), { pollSeconds: POLL, initialReplicas: MAX });
    for (const [name, cfg] of Object.entries(configs)) {
      const r = simulate(sys, w, autoscaler(cfg), { pollSeconds: POLL, initialReplicas: cfg.minReplicas });
      (out[name] ??= {})[w.name] = {
        throughput_ratio: round(r.throughput / ceiling.throughput),
        pod_seconds_ratio: round(r.podSeconds / ceiling.podSeconds),
        scale_changes: r.scaleChanges,
      };
    }
  }
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
function overall(per: Record<string, Figures>): Figures {
  const fs = Object.values(per);
  return {
    throughput_ratio: round(mean(fs.map((f) => f.throughput_ratio))),
    pod_seconds_ratio: round(mean(fs.map((f) => f.pod_seconds_ratio))),
    scale_changes: fs.reduce((a, f) => a + f.scale_changes, 0),
  };
}

/**
 * Best: among configs within 0.6 of the pod-seconds, the most throughput, then the fewest
 * pod-seconds, then the fewest scale changes; when none is within 0.6, the best throughput per
 * pod-second.
 */
function best(all: Record<string, Figures>): string {
  const names = Object.keys(all);
  const within = names.filter((n) => all[n]!.pod_seconds_ratio <= 0.6);
  if (within.length === 0) {
    const per = (n: string) => all[n]!.throughput_ratio / all[n]!.pod_seconds_ratio;
    return names.reduce((a, b) => (per(b) > per(a) ? b : a));
  }
  const order = (a: string, b: string) =>
    all[b]!.throughput_ratio - all[a]!.throughput_ratio ||
    all[a]!.pod_seconds_ratio - all[b]!.pod_seconds_ratio ||
    all[a]!.scale_changes - all[b]!.scale_changes;
  return [...within].sort(order)[0]!;
}

const started = performance.now();
const rate = runModel("rate");
const episodes = runModel("episodes");
const seconds = (performance.now() - started) / 1000;

console.log(
  `system: engine knee ${KNEE} workers, maxReplicas ${MAX}, pods ready after 20 s, polls every ${POLL} s`,
);
console.log(
  `workloads (30 min each): ${workloads.map((w) => w.name).join(", ")}; figures as fractions of always-at-max`,
);
const summary: Record<string, Figures> = {};
for (const [label, results] of [
  ["rate model (the issue's)", rate],
  ["episodes model (synchronous tail; sensitivity check)", episodes],
] as const) {
  console.log(`\n${label}`);
  console.log(`  ${"config".padEnd(24)}${workloads.map((w) => w.name.padEnd(26)).join("")}overall`);
  for (const [name, per] of Object.entries(results)) {
    const o = overall(per);
    if (results === rate) summary[name] = o;
    const cell = (f: Figures) =>
      `${f.throughput_ratio.toFixed(3)} / ${f.pod_seconds_ratio.toFixed(3)} / ${f.scale_changes}`.padEnd(26);
    console.log(`  ${name.padEnd(24)}${Object.values(per).map(cell).join("")}${cell(o)}`);
  }
}
console.log("\n  cells: throughput ratio / pod-seconds ratio / scale changes");
const top = best(summary);
const figures = {
  bench: "autoscale",
  best: top,
  ...summary[top]!,
  target_met: summary[top]!.throughput_ratio >= 0.95 && summary[top]!.pod_seconds_ratio <= 0.6,
  configs: Object.fromEntries(Object.entries(rate).map(([n, per]) => [n, { overall: summary[n], ...per }])),
  episodes_model: Object.fromEntries(Object.entries(episodes).map(([n, per]) => [n, overall(per)])),
  sim_seconds: round(seconds, 2),
};
console.log(
  `best (rate model): ${top}: throughput ${figures.throughput_ratio}, pod-seconds ${figures.pod_seconds_ratio}, ` +
    `${figures.scale_changes} scale changes over ${workloads.length} workloads; target met: ${figures.target_met}`,
);
emit(figures);
