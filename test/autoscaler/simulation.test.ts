// The autoscaler against a model of the system on a fake clock (test/autoscaler/model.ts): the
// issue's outcomes for a 30-minute saw-tooth, a sustained spike, and an engine that saturates
// at a known worker count.
import { expect } from "chai";
import { autoscaler, fixed, simulate, type SystemParams, type Trace, type Workload } from "./model.js";
import { config } from "./builders.js";

const POLL = 10;
// Each worker: 8 episodes of 40 s at a time = 0.2 episodes/s. Engine: 2 episodes/s, knee 10 workers.
const KNEE = 10;
const saturating: SystemParams = {
  mode: "rate",
  episodesPerWorker: 8,
  workerEpisodesPerSecond: 0.2,
  engineEpisodesPerSecond: 0.2 * KNEE,
  podStartSeconds: 20,
  llmSecondsPerTurn: 2,
};
const roomy: SystemParams = { ...saturating, engineEpisodesPerSecond: 0.2 * 100 };
const cfg = (o: Parameters<typeof config>[0] = {}) =>
  config({ minReplicas: 1, maxReplicas: 2 * KNEE, pollingIntervalSeconds: POLL, ...o });

const changes = (trace: Trace[]) =>
  trace.filter((x, i) => i > 0 && x.replicas !== trace[i - 1]!.replicas).map((x) => x.at);

describe("autoscaler simulation (fake clock)", () => {
  // 60 s rollouts at full engine speed (120 episodes at 2/s), then 30 s of training.
  const sawtooth: Workload = {
    name: "sawtooth",
    quietSeconds: 0,
    batch: 120,
    trainSeconds: 30,
    durationSeconds: 1800,
  };

  it("rides a 30-minute saw-tooth with a handful of scale changes at the throughput of always-at-max", () => {
    const scaler = autoscaler(cfg());
    const got = simulate(saturating, sawtooth, scaler, { pollSeconds: POLL, initialReplicas: 1 });
    const ceiling = simulate(saturating, sawtooth, fixed(2 * KNEE), {
      pollSeconds: POLL,
      initialReplicas: 2 * KNEE,
    });
    expect(got.steps).to.be.greaterThan(15);
    expect(got.scaleChanges, `changes at ${changes(got.trace).join(", ")} s`).to.be.at.most(6);
    expect(got.throughput / ceiling.throughput).to.be.at.least(0.95);
    expect(got.podSeconds / ceiling.podSeconds).to.be.at.most(0.6);
  });

  it("never flaps with the saw-tooth: no scale-down during any training phase after the ramp", () => {
    const scaler = autoscaler(cfg({ saturation: { enabled: false } }));
    const got = simulate(saturating, sawtooth, scaler, { pollSeconds: POLL, initialReplicas: 1 });
    expect(got.scaleChanges).to.be.at.most(4);
    const downs = got.trace.filter((x, i) => i > 0 && x.replicas < got.trace[i - 1]!.replicas);
    expect(downs).to.deep.equal([]);
  });

  it("reaches maxReplicas within two polling periods of a sustained spike when the engine has room", () => {
    const spike: Workload = {
      name: "spike",
      quietSeconds: 95,
      batch: 1e6,
      trainSeconds: 0,
      durationSeconds: 400,
    };
    const got = simulate(roomy, spike, autoscaler(cfg({ maxReplicas: 10 })), {
      pollSeconds: POLL,
      initialReplicas: 1,
    });
    const seen = got.trace.find((x) => x.backlog > 0)!.at;
    const atMax = got.trace.find((x) => x.replicas === 10)!.at;
    expect(atMax - seen).to.be.at.most(2 * POLL);
    expect(got.trace.filter((x) => x.at >= atMax).every((x) => x.replicas === 10)).to.equal(true);
  });

  it("stops at the saturation point and stays there (reason EngineSaturated)", () => {
    const sustained: Workload = {
      name: "sustained",
      quietSeconds: 0,
      batch: 1e6,
      trainSeconds: 0,
      durationSeconds: 800,
    };
    const scaler = autoscaler(cfg());
    const got = simulate(saturating, sustained, scaler, { pollSeconds: POLL, initialReplicas: 1 });
    const first = got.trace.findIndex((x) => x.reason === "EngineSaturated");
    expect(first, "saturation detected").to.be.greaterThan(0);
    // Finding the knee takes one look past it; from then on the pool stays at the knee.
    expect(got.trace[first]!.at).to.be.at.most(120);
    const after = got.trace.slice(first + 1).map((x) => x.replicas);
    expect(Math.max(...after)).to.equal(KNEE);
    expect(after.at(-1)).to.equal(KNEE);
  });

  it("probes for engine room at most 1.5x past the knee, once per memory window", () => {
    const hour: Workload = {
      name: "hour",
      quietSeconds: 0,
      batch: 1e6,
      trainSeconds: 0,
      durationSeconds: 3600,
    };
    const got = simulate(saturating, hour, autoscaler(cfg()), { pollSeconds: POLL, initialReplicas: 1 });
    const first = got.trace.findIndex((x) => x.reason === "EngineSaturated");
    const after = got.trace.slice(first + 1);
    expect(Math.max(...after.map((x) => x.replicas))).to.equal(Math.ceil(1.5 * KNEE));
    const above = after.filter((x) => x.replicas > KNEE).length * POLL;
    expect(above / 3600).to.be.below(0.05);
  });

  it("finds the new knee when the engine gets room (inference scaled up mid-run)", () => {
    const hour: Workload = {
      name: "hour",
      quietSeconds: 0,
      batch: 1e6,
      trainSeconds: 0,
      durationSeconds: 3600,
    };
    const growing: SystemParams = { ...saturating, engineEpisodesPerSecond: (t) => (t < 600 ? 2 : 4) };
    const got = simulate(growing, hour, autoscaler(cfg({ maxReplicas: 30 })), {
      pollSeconds: POLL,
      initialReplicas: 1,
    });
    expect(got.trace.find((x) => x.at === 590)!.replicas).to.equal(KNEE);
    expect(got.trace.at(-1)!.replicas).to.be.within(2 * KNEE, 2 * KNEE + 1);
  });

  it("without saturation detection the same backlog runs to maxReplicas for nothing", () => {
    const sustained: Workload = {
      name: "sustained",
      quietSeconds: 0,
      batch: 1e6,
      trainSeconds: 0,
      durationSeconds: 600,
    };
    const off = simulate(saturating, sustained, autoscaler(cfg({ saturation: { enabled: false } })), {
      pollSeconds: POLL,
      initialReplicas: 1,
    });
    const on = simulate(saturating, sustained, autoscaler(cfg()), { pollSeconds: POLL, initialReplicas: 1 });
    expect(off.trace.at(-1)!.replicas).to.equal(2 * KNEE);
    expect(on.throughput / off.throughput).to.be.at.least(0.97);
    expect(on.podSeconds / off.podSeconds).to.be.at.most(0.65);
  });

  it("scales down only after the 300 s window once the backlog is gone", () => {
    // One long step of 600 episodes at 2/s on 10 workers, then the run trains (idles) for good.
    const once: Workload = {
      name: "once",
      quietSeconds: 0,
      batch: 600,
      trainSeconds: 10_000,
      durationSeconds: 1200,
    };
    const got = simulate(roomy, once, autoscaler(cfg({ maxReplicas: 10 })), {
      pollSeconds: POLL,
      initialReplicas: 1,
    });
    // The last poll whose backlog still asked for all 10 workers (80 episodes, +10 % tolerance).
    const lastFull = got.trace.filter((x) => x.backlog > 88).at(-1)!.at;
    const lastHigh = got.trace.filter((x) => x.backlog > 0).at(-1)!.at;
    const firstDown = got.trace.find((x, i) => i > 0 && x.replicas < got.trace[i - 1]!.replicas)!;
    expect(firstDown.at).to.be.at.least(lastFull + 300 - POLL);
    expect(got.trace.find((x) => x.replicas === 1 && x.at > lastHigh)!.at).to.be.at.most(
      lastHigh + 300 + 2 * POLL,
    );
    expect(got.trace.at(-1)!.replicas).to.equal(1);
  });
});
