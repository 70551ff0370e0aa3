// The RL-aware signals on their own: phase tracking over the saw-tooth (step peaks, training
// lengths, release/prewarm advice) and engine-saturation verdicts from latency or throughput.
import { expect } from "chai";
import {
  initialSaturation,
  observeThroughput,
  type SaturationState,
  saturationVerdict,
  type ThroughputPoint,
} from "../../operator/autoscaler/saturation.js";
import {
  initialPhase,
  observePhase,
  type PhaseState,
  stepPeak,
  trainingAdvice,
} from "../../operator/autoscaler/sawtooth.js";
import { type HubPhase } from "../../operator/autoscaler/types.js";
import { DEFAULT_CONFIG, sample, T0 } from "./builders.js";

const sat = DEFAULT_CONFIG.saturation;

describe("saw-tooth phase tracking", () => {
  const feed = (xs: [number, HubPhase, number, number][]) =>
    xs.reduce(
      (s, [at, phase, step, backlog]) =>
        observePhase(s, sample({ at: T0 + at * 1000, phase, step, backlog })),
      initialPhase(),
    );

  it("records each rollout's peak and each gap between rollouts (training, then weight sync)", () => {
    const s = feed([
      [0, "Waiting", 0, 0], // start-up, not a gap
      [10, "Rollout", 1, 100],
      [20, "Rollout", 1, 160],
      [30, "Training", 1, 0],
      [50, "Training", 1, 0],
      [60, "Waiting", 1, 0],
      [70, "Rollout", 2, 90],
      [80, "Training", 2, 0],
      [110, "Rollout", 3, 40],
    ]);
    expect(s.stepPeaks).to.deep.equal([160, 90]);
    expect(s.gapSeconds).to.deep.equal([40, 30]);
    expect(s.currentPeak).to.equal(40);
    expect(stepPeak(s, 1)).to.equal(90);
    expect(stepPeak(s, 2)).to.equal(160);
  });

  it("does not count a gap whose start it did not see", () => {
    const s = feed([
      [0, "Training", 1, 0],
      [30, "Rollout", 2, 50],
    ]);
    expect(s.gapSeconds).to.deep.equal([]);
  });

  it("closes a step's peak when the step number moves without a training phase in between", () => {
    const s = feed([
      [0, "Rollout", 1, 80],
      [10, "Rollout", 2, 30],
    ]);
    expect(s.stepPeaks).to.deep.equal([80]);
    expect(s.currentPeak).to.equal(30);
  });

  it("advises release early in a long gap, prewarm near its end (training or weight sync), nothing for short ones", () => {
    const opts = { ...DEFAULT_CONFIG.sawtooth, releaseDuringTraining: true, podStartSeconds: 20 };
    const s: PhaseState = { ...initialPhase(), phase: "Training", gapSince: T0, gapSeconds: [100, 120, 110] };
    expect(trainingAdvice(s, T0 + 10_000, opts, 10)?.action).to.equal("release");
    expect(trainingAdvice(s, T0 + 75_000, opts, 10)?.action).to.equal("prewarm");
    expect(trainingAdvice({ ...s, phase: "Waiting" }, T0 + 75_000, opts, 10)?.action).to.equal("prewarm");
    expect(trainingAdvice({ ...s, gapSeconds: [35] }, T0, opts, 10)).to.equal(null);
    expect(trainingAdvice(s, T0, { ...opts, releaseDuringTraining: false }, 10)).to.equal(null);
    expect(trainingAdvice({ ...s, gapSince: null }, T0, opts, 10)).to.equal(null);
  });
});

describe("engine saturation", () => {
  const point = (workers: number, eps: number, llm: number, at = T0): ThroughputPoint => ({
    at,
    workers,
    episodesPerSecond: eps,
    llmSecondsPerTurn: llm,
    settled: true,
    fullDemand: true,
  });
  const state = (points: ThroughputPoint[]): SaturationState => ({ ...initialSaturation(), points });

  const cases: { name: string; points: ThroughputPoint[]; cap: number | null; signal?: string }[] = [
    { name: "latency flat: not saturated", points: [point(5, 1, 2), point(10, 2, 2.1)], cap: null },
    {
      name: "latency doubled at 20 workers: cap 10",
      points: [point(5, 1, 2), point(20, 2, 4)],
      cap: 10,
      signal: "latency",
    },
    {
      name: "latency rise under the threshold (20 %): not saturated",
      points: [point(5, 1, 2), point(12, 2, 2.4)],
      cap: null,
    },
    {
      name: "several saturated readings: the most workers any of them justifies",
      points: [point(5, 1, 2), point(20, 2, 4), point(15, 2, 2.5)],
      cap: 12,
      signal: "latency",
    },
    {
      name: "no latency: throughput flat from 10 to 20 workers: cap ceil(2.1 / 0.2) = 11",
      points: [point(10, 2, 0), point(20, 2.1, 0)],
      cap: 11,
      signal: "throughput",
    },
    {
      name: "no latency: throughput doubles with workers: not saturated",
      points: [point(10, 2, 0), point(20, 3.9, 0)],
      cap: null,
    },
    { name: "no latency, one pool size: cannot tell", points: [point(20, 2, 0)], cap: null },
    {
      name: "old readings are forgotten",
      points: [point(5, 1, 2, T0 - 2_000_000), point(20, 2, 4)],
      cap: null,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const v = saturationVerdict(state(c.points), T0, sat);
      expect(v?.cap ?? null).to.equal(c.cap);
      if (c.signal) expect(v?.signal).to.equal(c.signal);
    });
  }

  it("counts a reading as settled only once the worker count held for settleSeconds", () => {
    let s = initialSaturation();
    const obs = (at: number, activeWorkers: number, backlog = 500) =>
      (s = observeThroughput(
        s,
        sample({ at: T0 + at * 1000, activeWorkers, backlog, episodesPerSecond: 2, llmSecondsPerTurn: 2 }),
        8,
        sat,
      ));
    obs(0, 10);
    obs(10, 10);
    obs(20, 10);
    obs(30, 20);
    obs(40, 20, 100);
    expect(s.points.map((p) => [p.workers, p.settled, p.fullDemand])).to.deep.equal([
      [10, false, false],
      [10, false, false],
      [10, true, true],
      [20, false, false],
      [20, false, false],
    ]);
  });

  it("keeps nothing outside a rollout", () => {
    const s = observeThroughput(initialSaturation(), sample({ phase: "Training", activeWorkers: 5 }), 8, sat);
    expect(s.points).to.deep.equal([]);
  });
});
