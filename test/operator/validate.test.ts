// Table tests of spec validation (no server): a bad TrainingRun or AgentWorkerPool is rejected with
// the field named.
import { expect } from "chai";
import { validatePool, validateRun } from "../../operator/validate.js";

describe("operator policies", () => {
  const invalid: [string, Record<string, unknown>, RegExp][] = [
    [
      "both workers and workerPoolRef",
      { workerPoolRef: { name: "x" } },
      /exactly one of spec.workers and spec.workerPoolRef/,
    ],
    [
      "min > max replicas",
      { workers: { autoscaling: { minReplicas: 5, maxReplicas: 2 } } },
      /spec\.workers\.autoscaling\.minReplicas: must be <= maxReplicas/,
    ],
    [
      "runtimeClass without a name",
      { workers: { sandbox: { mode: "runtimeClass" } } },
      /spec\.workers\.sandbox\.runtimeClassName: is required when mode is runtimeClass/,
    ],
    [
      "tensor parallel over GPUs",
      { inference: { gpus: 2, tensorParallel: 4 } },
      /spec\.inference\.tensorParallel: must be <= gpus/,
    ],
    [
      "SGLang without its image",
      { inference: { engine: "sglang" } },
      /spec\.inference\.image: is required when engine is sglang/,
    ],
    ["a bad enum", { algorithm: { name: "ppo" } }, /spec\.algorithm\.name: must be one of/],
    [
      "a hub port on the weight service's bulk port",
      { trainer: { hubPort: 7073 } },
      /spec\.trainer\.hubPort: must not be 7071 or 7073/,
    ],
    [
      "the metrics port on the hub's",
      { trainer: { hubPort: 9000, metricsPort: 9000 } },
      /spec\.trainer\.metricsPort: must differ from hubPort/,
    ],
    [
      "the engine port on a sidecar peer port",
      { inference: { port: 7074 } },
      /spec\.inference\.port: must not be 7072 or 7074/,
    ],
  ];
  for (const [what, spec, msg] of invalid)
    it(`rejects ${what}, naming the field`, () => {
      const obj = {
        apiVersion: "l0.dev/v1alpha1",
        kind: "TrainingRun",
        metadata: { name: "r" },
        spec: { model: { name: "tiny" }, dataset: { path: "/d" }, workers: {}, ...spec },
      };
      const v = validateRun(obj as never);
      expect("invalid" in v && v.invalid.message).to.match(msg);
    });

  const invalidPools: [string, object, RegExp][] = [
    [
      "min > max replicas",
      { autoscaling: { minReplicas: 9, maxReplicas: 3 } },
      /spec\.autoscaling\.minReplicas: must be <= maxReplicas/,
    ],
    [
      "runtimeClass without a name",
      { sandbox: { mode: "runtimeClass" } },
      /spec\.sandbox\.runtimeClassName: is required/,
    ],
    [
      "a bad policy type",
      {
        autoscaling: {
          behavior: { scaleUp: { policies: [{ type: "Nodes", value: 1, periodSeconds: 15 }] } },
        },
      },
      /spec\.autoscaling\.behavior\.scaleUp\.policies\[0\]\.type: must be one of "Pods", "Percent"/,
    ],
  ];
  for (const [what, spec, msg] of invalidPools)
    it(`rejects a pool with ${what}, naming the field`, () => {
      const v = validatePool({
        kind: "AgentWorkerPool",
        metadata: { name: "p" },
        spec: { hubRef: { name: "qa" }, ...spec },
      } as never);
      expect("invalid" in v && v.invalid).to.include({ reason: "InvalidSpec" });
      expect("invalid" in v && v.invalid.message).to.match(msg);
    });
});
