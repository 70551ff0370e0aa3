// The pool's spec.autoscaling mapped onto the core's config: defaults, overrides, and errors
// that name the field.
import { expect } from "chai";
import { autoscalingConfig } from "../../operator/autoscaler/config.js";
import { deletionCostPatches, DELETION_COST_ANNOTATION } from "../../operator/autoscaler/deletion-cost.js";
import { DEFAULT_CONFIG, DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP } from "../../operator/autoscaler/types.js";
import { L0Error } from "../../lib/errors.js";
import { defaultValidator } from "../../lib/run-config.js";

const pool = (autoscaling: unknown, extra: Record<string, unknown> = {}) => ({
  spec: { ...extra, autoscaling },
});

describe("autoscaling config from the pool", () => {
  it("fills the issue's defaults (HPA behavior, disabled unless asked)", () => {
    const c = autoscalingConfig(pool(undefined));
    expect(c.enabled).to.equal(false);
    expect(c.behavior).to.deep.equal({ scaleUp: DEFAULT_SCALE_UP, scaleDown: DEFAULT_SCALE_DOWN });
    expect([c.minReplicas, c.maxReplicas, c.targetBacklogPerWorker, c.pollingIntervalSeconds]).to.deep.equal([
      1, 10, 8, 10,
    ]);
    expect(c.fallback).to.equal(undefined);
    expect(c.saturation.enabled).to.equal(true);
  });

  it("reads the CRD's HPA-shaped fields and the RL options", () => {
    const c = autoscalingConfig(
      pool(
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
          fallback: { failureThreshold: 5, replicas: 3 },
          sawtooth: { sizeFrom: "StepPeak", releaseDuringTraining: true, podStartSeconds: 45 },
          saturation: { enabled: false },
        },
        { episodesPerWorker: 16 },
      ),
    );
    expect(c.behavior.scaleUp).to.deep.equal({
      stabilizationWindowSeconds: 30,
      policies: [{ type: "Pods", value: 2, periodSeconds: 60 }],
      selectPolicy: "Max",
    });
    expect(c.behavior.scaleDown).to.deep.equal({ ...DEFAULT_SCALE_DOWN, selectPolicy: "Disabled" });
    expect(c.fallback).to.deep.equal({ failureThreshold: 5, replicas: 3 });
    expect([
      c.episodesPerWorker,
      c.pollingIntervalSeconds,
      c.sawtooth.sizeFrom,
      c.sawtooth.podStartSeconds,
    ]).to.deep.equal([16, 15, "StepPeak", 45]);
    expect(c.saturation.enabled).to.equal(false);
  });

  it("maps a pool defaulted by the CRD schema (as the API server stores it)", () => {
    const { value, violations } = defaultValidator().validate("AgentWorkerPool", {
      apiVersion: "l0.dev/v1alpha1",
      kind: "AgentWorkerPool",
      metadata: { name: "p" },
      spec: { hubRef: { name: "qa" }, autoscaling: { enabled: true, behavior: { scaleDown: {} } } },
    });
    expect(violations).to.deep.equal([]);
    const c = autoscalingConfig(value as { spec: Record<string, unknown> });
    expect(c.enabled).to.equal(true);
    expect(c.behavior.scaleDown).to.deep.equal(DEFAULT_SCALE_DOWN);
    expect(c.pollingIntervalSeconds).to.equal(10);
  });

  it("the CRD's defaults are the autoscaler's defaults, and every RL option survives the schema", () => {
    const validate = (autoscaling: Record<string, unknown>) =>
      defaultValidator().validate("AgentWorkerPool", {
        apiVersion: "l0.dev/v1alpha1",
        kind: "AgentWorkerPool",
        metadata: { name: "p" },
        spec: { hubRef: { name: "qa" }, autoscaling },
      });
    const d = validate({ enabled: true });
    expect(d.violations).to.deep.equal([]);
    const c = autoscalingConfig(d.value as { spec: Record<string, unknown> });
    const { enabled: _e, fallback: _f, ...fromCrd } = c;
    const { enabled: _de, fallback: _df, ...defaults } = DEFAULT_CONFIG;
    expect(fromCrd).to.deep.equal(defaults);
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
    const v = validate(set);
    expect(v.violations).to.deep.equal([]);
    const c2 = autoscalingConfig(v.value as { spec: Record<string, unknown> });
    expect([c2.tolerance, c2.smoothingWindowSeconds]).to.deep.equal([0.3, 60]);
    expect(c2.sawtooth).to.deep.equal(set.sawtooth);
    expect(c2.saturation).to.deep.equal(set.saturation);
    const bad = validate({
      tolerance: 2,
      sawtooth: { peakSteps: 0, sizeFrom: "Mean" },
      saturation: { memorySeconds: 5 },
    });
    expect(bad.violations.map((x) => x.field).sort()).to.deep.equal([
      "spec.autoscaling.saturation.memorySeconds",
      "spec.autoscaling.sawtooth.peakSteps",
      "spec.autoscaling.sawtooth.sizeFrom",
      "spec.autoscaling.tolerance",
    ]);
  });

  it("names every bad field at once", () => {
    let err: unknown;
    try {
      autoscalingConfig(
        pool({
          minReplicas: 5,
          maxReplicas: 2,
          targetBacklogPerWorker: 0,
          behavior: { scaleUp: { policies: [{ type: "Nodes", value: 1, periodSeconds: 15 }] } },
          sawtooth: { sizeFrom: "Mean" },
        }),
      );
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(L0Error);
    const fields = (err as L0Error).violations.map((v) => v.field);
    expect(fields).to.have.members([
      "spec.autoscaling.minReplicas",
      "spec.autoscaling.targetBacklogPerWorker",
      "spec.autoscaling.behavior.scaleUp.policies[0].type",
      "spec.autoscaling.sawtooth.sizeFrom",
    ]);
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
