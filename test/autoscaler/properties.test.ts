// Invariants of the decision over random configs and random Stats histories (fast-check):
// replicas stay within [min, max], and no step moves more than the rate policies allow.
import { expect } from "chai";
import fc from "fast-check";
import { decide, initialPoolState, type Observation } from "../../operator/autoscaler/decide.js";
import { type AutoscalingConfig, type HubPhase, type ScalingRules } from "../../operator/autoscaler/types.js";
import { config, T0 } from "./builders.js";

const phase = fc.constantFrom<HubPhase>("Waiting", "Rollout", "Training", "Done", "Unknown");
const observation = fc.oneof(
  {
    weight: 9,
    arbitrary: fc.record({
      backlog: fc.nat(2000),
      phase,
      stepInc: fc.nat(1),
      episodesPerSecond: fc.double({ min: 0, max: 50, noNaN: true }),
      activeWorkers: fc.nat(60),
      llmSecondsPerTurn: fc.double({ min: 0, max: 20, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.constant(null) },
);
const history = fc.array(fc.record({ dt: fc.integer({ min: 1, max: 40 }), obs: observation }), {
  minLength: 1,
  maxLength: 80,
});

const rules = (maxWindow: number) =>
  fc.record({
    stabilizationWindowSeconds: fc.nat(maxWindow),
    policies: fc.array(
      fc.record({
        type: fc.constantFrom<"Pods" | "Percent">("Pods", "Percent"),
        value: fc.integer({ min: 1, max: 200 }),
        periodSeconds: fc.integer({ min: 1, max: 120 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    selectPolicy: fc.constantFrom<"Max" | "Min" | "Disabled">("Max", "Min", "Disabled"),
  });

const anyConfig = fc
  .record({
    min: fc.nat(5),
    span: fc.nat(40),
    target: fc.double({ min: 0.5, max: 32, noNaN: true }),
    tolerance: fc.double({ min: 0, max: 0.5, noNaN: true }),
    up: rules(120),
    down: rules(600),
    saturation: fc.boolean(),
    sizeFrom: fc.constantFrom<"Backlog" | "StepPeak">("Backlog", "StepPeak"),
    release: fc.boolean(),
    fallback: fc.option(
      fc.record({ failureThreshold: fc.integer({ min: 1, max: 3 }), replicas: fc.nat(60) }),
    ),
  })
  .map((c): AutoscalingConfig =>
    config({
      minReplicas: c.min,
      maxReplicas: Math.max(1, c.min + c.span),
      targetBacklogPerWorker: c.target,
      tolerance: c.tolerance,
      behavior: { scaleUp: c.up, scaleDown: c.down },
      saturation: { enabled: c.saturation, memorySeconds: 300, settleSeconds: 10 },
      sawtooth: { sizeFrom: c.sizeFrom, releaseDuringTraining: c.release, podStartSeconds: 5 },
      fallback: c.fallback ?? undefined,
    }),
  );

type Step = {
  dt: number;
  obs: null | {
    backlog: number;
    phase: HubPhase;
    stepInc: number;
    episodesPerSecond: number;
    activeWorkers: number;
    llmSecondsPerTurn: number;
  };
};

/** Replays a history, applying every decision; returns (time, from, to) per step. */
function replay(cfg: AutoscalingConfig, start: number, steps: Step[]) {
  let state = initialPoolState();
  let current = start;
  let now = T0;
  let step = 1;
  const moves: { at: number; from: number; to: number }[] = [];
  for (const s of steps) {
    now += s.dt * 1000;
    step += s.obs?.stepInc ?? 0;
    const obs: Observation = s.obs
      ? { ok: true, sample: { at: now, step, ...s.obs } }
      : { ok: false, error: "unreachable" };
    const d = decide(cfg, state, current, obs, now);
    moves.push({ at: now, from: current, to: d.replicas });
    state = d.state;
    current = d.replicas;
  }
  return moves;
}

describe("autoscaler properties", () => {
  it("min <= replicas <= max after every decision", () => {
    fc.assert(
      fc.property(anyConfig, fc.nat(60), history, (cfg, start, steps) => {
        const current = Math.min(cfg.maxReplicas, Math.max(cfg.minReplicas, start));
        for (const m of replay(cfg, current, steps)) {
          expect(m.to).to.be.within(cfg.minReplicas, cfg.maxReplicas);
          expect(Number.isInteger(m.to)).to.equal(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("within any policy period, the net change never exceeds the Pods policy (no fallback)", () => {
    const podsRules = (maxWindow: number) =>
      fc.record({
        stabilizationWindowSeconds: fc.nat(maxWindow),
        policies: fc
          .tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 5, max: 90 }))
          .map(([value, periodSeconds]) => [{ type: "Pods" as const, value, periodSeconds }]),
        selectPolicy: fc.constant<"Max">("Max"),
      });
    fc.assert(
      fc.property(
        anyConfig,
        podsRules(60),
        podsRules(300),
        fc.nat(60),
        history,
        (base, up, down, start, steps) => {
          const cfg: AutoscalingConfig = {
            ...base,
            fallback: undefined,
            behavior: { scaleUp: up as ScalingRules, scaleDown: down as ScalingRules },
          };
          const current = Math.min(cfg.maxReplicas, Math.max(cfg.minReplicas, start));
          const moves = replay(cfg, current, steps);
          const net = (at: number, periodSeconds: number) =>
            moves
              .filter((m) => m.at > at - periodSeconds * 1000 && m.at <= at)
              .reduce((s, m) => s + m.to - m.from, 0);
          for (const m of moves) {
            const upPolicy = up.policies[0]!;
            const downPolicy = down.policies[0]!;
            if (m.to > m.from) expect(net(m.at, upPolicy.periodSeconds)).to.be.at.most(upPolicy.value);
            if (m.to < m.from) expect(-net(m.at, downPolicy.periodSeconds)).to.be.at.most(downPolicy.value);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("selectPolicy Disabled freezes that direction", () => {
    fc.assert(
      fc.property(anyConfig, fc.nat(60), history, (base, start, steps) => {
        const frozen = { ...base.behavior.scaleUp, selectPolicy: "Disabled" as const };
        const cfg: AutoscalingConfig = {
          ...base,
          fallback: undefined,
          behavior: { ...base.behavior, scaleUp: frozen },
        };
        const current = Math.min(cfg.maxReplicas, Math.max(cfg.minReplicas, start));
        for (const m of replay(cfg, current, steps)) expect(m.to).to.be.at.most(m.from);
      }),
      { numRuns: 200 },
    );
  });
});
