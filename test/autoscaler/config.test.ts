// The resolved pool's spec.autoscaling mapped onto the core's config: the CRD's defaults,
// overrides, and the resolver's errors that name the field.
import { expect } from "chai";
import { autoscalingConfig } from "../../operator/autoscaler/config.js";
import { deletionCostPatches, DELETION_COST_ANNOTATION } from "../../operator/autoscaler/deletion-cost.js";
import { L0Error } from "../../lib/errors.js";
import { resolvedPool } from "../fixtures/runs.js";
import { DEFAULT_CONFIG, DEFAULT_SCALE_DOWN } from "./builders.js";

const config = (autoscaling: unknown, extra: Record<string, unknown> = {}) =>
  autoscalingConfig(resolvedPool({ ...extra, autoscaling }).spec);

describe("autoscaling config from the resolved pool", () => {
  it("takes the CRD's defaults: the HPA's behavior, disabled unless asked", () => {
    const c = config(undefined);
    expect(c.enabled).to.equal(false);
    expect(c.behavior).to.deep.equal({
      scaleUp: {
        stabilizationWindowSeconds: 0,
        selectPolicy: "Max",
        policies: [
          { type: "Percent", value: 100, periodSeconds: 15 },
          { type: "Pods", value: 4, periodSeconds: 15 },
        ],
      },
      scaleDown: {
        stabilizationWindowSeconds: 300,
        selectPolicy: "Max",
        policies: [{ type: "Percent", value: 100, periodSeconds: 15 }],
      },
    });
    expect([c.minReplicas, c.maxReplicas, c.targetBacklogPerWorker, c.pollingIntervalSeconds]).to.deep.equal([
      1, 10, 8, 10,
    ]);
    expect(c.fallback).to.equal(undefined);
    expect(c.saturation.enabled).to.equal(true);
  });

  it("reads the CRD's HPA-shaped fields and the RL options, defaulting what is left out", () => {
    const c = config(
      {
        enabled: true,
        minReplicas: 2,
        maxReplicas: 40,
        targetBacklogPerWorker: 4,
        pollingInterval: 15,
        behavior: {
          scaleUp: {
            stabilizationWindowSeconds: 30,
            policies: [{ type: "Pods", value: 2, periodSeconds: 60 }],
          },
          scaleDown: { selectPolicy: "Disabled" },
        },
        fallback: { failureThreshold: 5 },
        sawtooth: { sizeFrom: "StepPeak", releaseDuringTraining: true, podStartSeconds: 45 },
        saturation: { enabled: false },
      },
      { episodesPerWorker: 16 },
    );
    expect(c.behavior.scaleUp).to.deep.equal({
      stabilizationWindowSeconds: 30,
      policies: [{ type: "Pods", value: 2, periodSeconds: 60 }],
      selectPolicy: "Max",
    });
    expect(c.behavior.scaleDown).to.deep.equal({ ...DEFAULT_SCALE_DOWN, selectPolicy: "Disabled" });
    expect(c.fallback, "a fallback without replicas holds minReplicas").to.deep.equal({
      failureThreshold: 5,
      replicas: 2,
    });
    expect([
      c.episodesPerWorker,
      c.pollingIntervalSeconds,
      c.sawtooth.sizeFrom,
      c.sawtooth.podStartSeconds,
    ]).to.deep.equal([16, 15, "StepPeak", 45]);
    expect(c.sawtooth.peakSteps).to.equal(DEFAULT_CONFIG.sawtooth.peakSteps);
    expect(c.saturation).to.deep.equal({ ...DEFAULT_CONFIG.saturation, enabled: false });
  });

  it("every RL option survives the schema", () => {
    const set = {
      enabled: true,
      tolerance: 0.3,
      smoothingWindowSeconds: 60,
      sawtooth: { sizeFrom: "StepPeak", peakSteps: 5, releaseDuringTraining: true, podStartSeconds: 45 },
      saturation: {
        enabled: false,
        latencyRise: 0.5,
        efficiencyDrop: 0.4,
        memorySeconds: 600,
        settleSeconds: 30,
      },
    };
    const c = config(set);
    expect([c.tolerance, c.smoothingWindowSeconds]).to.deep.equal([0.3, 60]);
    expect(c.sawtooth).to.deep.equal(set.sawtooth);
    expect(c.saturation).to.deep.equal(set.saturation);
  });

  it("the resolver names every bad field at once (schema and CEL rules)", () => {
    let err: unknown;
    try {
      config({
        tolerance: 2,
        targetBacklogPerWorker: 0,
        behavior: { scaleUp: { policies: [{ type: "Nodes", value: 1, periodSeconds: 15 }] } },
        sawtooth: { peakSteps: 0, sizeFrom: "Mean" },
        saturation: { memorySeconds: 5 },
      });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(L0Error);
    expect((err as L0Error).violations.map((v) => v.field.replace(/^AgentWorkerPool: /, ""))).to.have.members(
      [
        "spec.autoscaling.tolerance",
        "spec.autoscaling.targetBacklogPerWorker",
        "spec.autoscaling.behavior.scaleUp.policies[0].type",
        "spec.autoscaling.sawtooth.peakSteps",
        "spec.autoscaling.sawtooth.sizeFrom",
        "spec.autoscaling.saturation.memorySeconds",
      ],
    );
    expect(() => config({ minReplicas: 5, maxReplicas: 2 })).to.throw(
      L0Error,
      /spec\.autoscaling\.minReplicas: must be <= maxReplicas/,
    );
  });
});

describe("pod deletion cost", () => {
  it("sets each pod's cost to its active episodes, skipping pods already right and pods with no report", () => {
    const patches = deletionCostPatches(
      [
        { name: "w-1" },
        { name: "w-2", annotations: { [DELETION_COST_ANNOTATION]: "3" } },
        { name: "w-3", annotations: { [DELETION_COST_ANNOTATION]: "5" } },
        { name: "w-4" },
      ],
      new Map([
        ["w-1", 0],
        ["w-2", 3],
        ["w-3", 1],
      ]),
    );
    expect(patches).to.deep.equal([
      { pod: "w-1", annotations: { [DELETION_COST_ANNOTATION]: "0" } },
      { pod: "w-3", annotations: { [DELETION_COST_ANNOTATION]: "1" } },
    ]);
  });

  it("clamps to the annotation's int32 range", () => {
    const [p] = deletionCostPatches([{ name: "w" }], new Map([["w", 1e12]]));
    expect(p!.annotations[DELETION_COST_ANNOTATION]).to.equal(String(2 ** 31 - 1));
  });
});
