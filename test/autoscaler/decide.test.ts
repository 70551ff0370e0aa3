// The whole decision, table by table: tolerance and bounds, HPA behavior on top, engine
// saturation, step-peak sizing, releasing workers during training, and an unreachable hub.
import { expect } from "chai";
import { decide, initialPoolState, type PoolState } from "../../operator/autoscaler/decide.js";
import { replicasForBacklog } from "../../operator/autoscaler/backlog.js";
import { type AutoscalingConfig, type StatsSample } from "../../operator/autoscaler/types.js";
import { config, sample, T0 } from "./builders.js";

const ok = (s: Partial<StatsSample>) => ({ ok: true as const, sample: sample(s) });

/** Feeds samples every `every` s from T0, applying each decision; returns the last decision. */
function run(cfg: AutoscalingConfig, current: number, samples: Partial<StatsSample>[], every = 10) {
  let state: PoolState = initialPoolState();
  let d;
  for (const [i, s] of samples.entries()) {
    const at = T0 + i * every * 1000;
    d = decide(cfg, state, current, ok({ ...s, at }), at);
    state = d.state;
    current = d.replicas;
  }
  return d!;
}

describe("replicasForBacklog", () => {
  const opts = { targetBacklogPerWorker: 8, tolerance: 0.1, minReplicas: 1, maxReplicas: 20 };
  const cases: [string, number, number, number][] = [
    ["ceil(backlog / target)", 81, 5, 11],
    ["within tolerance keeps current", 84, 10, 10],
    ["just outside tolerance moves", 89, 10, 12],
    ["clamped to max", 1000, 5, 20],
    ["clamped to min", 0, 5, 1],
    ["from zero replicas", 17, 0, 3],
  ];
  for (const [name, backlog, current, want] of cases) {
    it(name, () => expect(replicasForBacklog(backlog, current, opts)).to.equal(want));
  }
});

describe("decide", () => {
  it("scales up on a backlog, limited by the default rate (+100 % or +4 per 15 s)", () => {
    const d = decide(config({ maxReplicas: 50 }), initialPoolState(), 2, ok({ backlog: 400 }), T0);
    expect([d.replicas, d.reason, d.direction]).to.deep.equal([6, "ScaleUpLimit", "up"]);
  });

  it("keeps the size within the tolerance band", () => {
    const d = decide(config(), initialPoolState(), 10, ok({ backlog: 84 }), T0);
    expect([d.replicas, d.reason, d.direction]).to.deep.equal([10, "WithinTolerance", "none"]);
  });

  it("does not scale down before the 300 s window has passed, then does", () => {
    const cfg = config();
    const high = Array.from({ length: 3 }, () => ({ backlog: 80 }));
    const low = Array.from({ length: 29 }, () => ({ backlog: 0 }));
    expect(run(cfg, 10, [...high, ...low]).replicas).to.equal(10); // last high at 20 s, now 300 s
    const d = run(cfg, 10, [...high, ...low, { backlog: 0 }, { backlog: 0 }]); // now 320 s
    expect([d.replicas, d.reason]).to.deep.equal([1, "BacklogLow"]);
  });

  it("does not scale a pool down right after a restart (the window is seeded with current replicas)", () => {
    const d = decide(config(), initialPoolState(), 10, ok({ backlog: 0 }), T0);
    expect([d.replicas, d.reason]).to.deep.equal([10, "ScaleDownStabilized"]);
    expect(d.message).to.equal("backlog 0.0 at 8 per worker asks for 1; the scale-down window holds 10");
  });

  it("snaps to the bounds when the pool is outside them", () => {
    const cfg = config({ minReplicas: 2, maxReplicas: 5 });
    expect(decide(cfg, initialPoolState(), 0, ok({}), T0).reason).to.equal("BelowMinReplicas");
    const d = decide(cfg, initialPoolState(), 9, ok({ backlog: 1000 }), T0);
    expect([d.replicas, d.reason]).to.deep.equal([5, "AboveMaxReplicas"]);
  });

  it("holds replicas and reports Degraded when the hub is unreachable", () => {
    const d = decide(config(), initialPoolState(), 7, { ok: false, error: "connect ECONNREFUSED" }, T0);
    expect([d.replicas, d.reason, d.direction]).to.deep.equal([7, "HubUnreachable", "none"]);
    expect(d.degraded?.reason).to.equal("HubUnreachable");
    expect(d.degraded?.message).to.contain("ECONNREFUSED");
    expect(d.backlog).to.equal(undefined);
  });

  it("follows the fallback after failureThreshold failures in a row, and resumes when the hub answers", () => {
    const cfg = config({ fallback: { failureThreshold: 2, replicas: 3 } });
    const fail = { ok: false as const, error: "deadline exceeded" };
    const d1 = decide(cfg, initialPoolState(), 7, fail, T0);
    expect(d1.replicas).to.equal(7);
    const d2 = decide(cfg, d1.state, 7, fail, T0 + 10_000);
    expect([d2.replicas, d2.direction]).to.deep.equal([3, "down"]);
    const d3 = decide(cfg, d2.state, 3, ok({ backlog: 80, at: T0 + 20_000 }), T0 + 20_000);
    // The 4 pods removed 10 s ago give their room back to the 15 s rate policy: 3 -> 10 at once.
    expect([d3.replicas, d3.reason, d3.degraded]).to.deep.equal([10, "BacklogHigh", undefined]);
    expect(d3.state.failures).to.equal(0);
  });

  it("smooths the backlog over the window", () => {
    const cfg = config({ smoothingWindowSeconds: 30, maxReplicas: 40 });
    // 0, 0, 240 within 30 s -> mean 80 -> 10 workers (from 1: rate allows 5 first).
    const d = run(cfg, 10, [{ backlog: 0 }, { backlog: 0 }, { backlog: 240 }]);
    expect(d.backlog).to.equal(80);
  });

  it("sizes from the step peak while the learner trains (sizeFrom: StepPeak)", () => {
    const cfg = config({ sawtooth: { sizeFrom: "StepPeak" }, maxReplicas: 40 });
    const steps = [
      { phase: "Rollout" as const, backlog: 160 },
      { phase: "Rollout" as const, backlog: 40 },
      { phase: "Training" as const, backlog: 0 },
      { phase: "Training" as const, backlog: 0 },
    ];
    const d = run(cfg, 20, steps);
    expect(d.backlog).to.equal(160);
    expect(d.replicas).to.equal(20);
  });

  describe("engine saturation", () => {
    // Two pool sizes seen with full demand: 8 workers give 4 eps (0.5 each); 16 give 5 eps, and
    // engine latency per turn 1.6x (Little's law: 16 / 1.6 = 10 workers' worth).
    const points = (llm16: number): PoolState => ({
      ...initialPoolState(),
      seeded: true,
      saturation: {
        workers: 16,
        workersSince: T0 - 200_000,
        rolloutSince: T0 - 200_000,
        lastCap: null,
        points: [
          {
            at: T0 - 100_000,
            workers: 8,
            episodesPerSecond: 4,
            llmSecondsPerTurn: 1,
            settled: true,
            fullDemand: true,
          },
          {
            at: T0 - 50_000,
            workers: 16,
            episodesPerSecond: 5,
            llmSecondsPerTurn: llm16,
            settled: true,
            fullDemand: true,
          },
        ],
      },
    });
    const cfg = config({ maxReplicas: 32 });

    it("stops adding workers where throughput stopped growing (reason EngineSaturated)", () => {
      const d = decide(
        cfg,
        points(1.6),
        10,
        ok({ backlog: 500, activeWorkers: 10, episodesPerSecond: 5 }),
        T0,
      );
      expect([d.replicas, d.reason, d.saturationCap]).to.deep.equal([10, "EngineSaturated", 10]);
      expect(d.message).to.contain("throughput stops growing at 10 workers");
    });

    it("brings a pool past the saturation point back to it without waiting for the window", () => {
      const d = decide(
        cfg,
        points(1.6),
        16,
        ok({ backlog: 500, activeWorkers: 16, episodesPerSecond: 5 }),
        T0,
      );
      expect([d.replicas, d.reason, d.direction]).to.deep.equal([10, "EngineSaturated", "down"]);
    });

    it("is not saturation when engine latency per turn did not rise (episodes just got longer)", () => {
      const d = decide(
        cfg,
        points(1.05),
        16,
        ok({ backlog: 500, activeWorkers: 16, episodesPerSecond: 5 }),
        T0,
      );
      expect(d.reason).to.not.equal("EngineSaturated");
      expect(d.replicas).to.be.greaterThan(16);
    });

    it("can be turned off", () => {
      const off = config({ maxReplicas: 32, saturation: { enabled: false } });
      const d = decide(
        off,
        points(1.6),
        16,
        ok({ backlog: 500, activeWorkers: 16, episodesPerSecond: 5 }),
        T0,
      );
      expect(d.replicas).to.equal(32);
    });
  });

  describe("releasing workers during long training phases", () => {
    const cfg = config({
      maxReplicas: 40,
      sawtooth: { releaseDuringTraining: true, podStartSeconds: 20 },
    });
    // One full cycle seen: rollout (peak 160), then 120 s of training, then the next rollout.
    const trained: PoolState = {
      ...initialPoolState(),
      seeded: true,
      phase: {
        phase: "Training",
        gapSince: T0,
        step: 2,
        currentPeak: 0,
        stepPeaks: [160],
        gapSeconds: [120],
      },
    };
    const training = (s: number) => ok({ phase: "Training", step: 2, at: T0 + s * 1000 });

    it("lets workers go early in a training phase that is longer than a pod start", () => {
      const d = decide(cfg, trained, 20, training(10), T0 + 10_000);
      expect([d.replicas, d.reason]).to.deep.equal([1, "TrainingPhase"]);
    });

    it("brings them back before the next rollout (pod start + two polls ahead)", () => {
      const d = decide(cfg, trained, 1, training(85), T0 + 85_000);
      expect([d.replicas, d.reason]).to.deep.equal([5, "ScaleUpLimit"]);
      const d2 = decide(cfg, d.state, 5, training(100), T0 + 100_000);
      expect(d2.replicas).to.equal(10);
    });

    it("does nothing when training is shorter than a pod start plus margin", () => {
      const short: PoolState = {
        ...trained,
        phase: { ...trained.phase, gapSeconds: [30] },
        history: { ...trained.history, recommendations: [{ at: T0 - 60_000, replicas: 20 }] },
      };
      const d = decide(cfg, short, 20, training(5), T0 + 5000);
      expect(d.replicas).to.equal(20);
      expect(d.reason).to.not.equal("TrainingPhase");
    });
  });
});
