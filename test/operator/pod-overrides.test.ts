// podOverrides per role: merged into the pods the operator builds, the operator's settings win,
// and a conflict is refused naming the field (operator/pod-overrides.ts, the preflights).
import { expect } from "chai";
import { BUILTIN_IMAGES } from "../../operator/images.js";
import { validatePool, validateRun } from "../../operator/validate.js";
import { buildTrainerJob } from "../../operator/trainingrun/build.js";
import { buildInference } from "../../operator/trainingrun/build-inference.js";
import { buildWorkerDeployment } from "../../operator/workerpool/build.js";
import { poolManifest, resolvedPool, resolvedRun, runManifest } from "../fixtures/runs.js";

const overrides = {
  env: [{ name: "NCCL_DEBUG", value: "WARN" }],
  envFrom: [{ secretRef: { name: "wandb" } }],
  volumes: [{ name: "data", persistentVolumeClaim: { claimName: "qa-data" } }],
  volumeMounts: [{ name: "data", mountPath: "/data" }],
  affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } },
  imagePullSecrets: [{ name: "regcred" }],
  priorityClassName: "high",
  serviceAccountName: "trainer-sa",
  labels: { team: "ml" },
  annotations: { "example.com/cost-center": "42" },
};

describe("operator: pod overrides", () => {
  it("merges every field into the trainer pod, keeping the operator's", () => {
    const t = buildTrainerJob(resolvedRun({ trainer: { podOverrides: overrides } }), 0).spec!.template;
    const c = t.spec!.containers[0]!;
    expect(c.env).to.deep.include({ name: "NCCL_DEBUG", value: "WARN" });
    expect(c.env!.map((e) => e.name)).to.include("L0_TRAINER_RUN_CONFIG");
    expect(c.envFrom).to.deep.equal([{ secretRef: { name: "wandb" } }]);
    expect(c.volumeMounts).to.deep.include({ name: "data", mountPath: "/data" });
    expect(t.spec!.volumes!.map((v) => v.name)).to.include.members(["data", "checkpoints", "run-config"]);
    expect(t.spec).to.deep.include({
      priorityClassName: "high",
      serviceAccountName: "trainer-sa",
      imagePullSecrets: [{ name: "regcred" }],
      automountServiceAccountToken: false,
    });
    expect(t.spec!.affinity).to.deep.equal(overrides.affinity);
    expect(t.metadata!.labels).to.include({ team: "ml", "app.kubernetes.io/component": "trainer" });
    expect(t.metadata!.annotations).to.deep.equal(overrides.annotations);
    expect(t.spec!.securityContext!.runAsNonRoot).to.equal(true);
  });

  it("mounts into the engine and the sidecar, env into the engine only", () => {
    const run = resolvedRun({ model: { name: "/models/q" }, inference: { podOverrides: overrides } });
    const [engine, sidecar] = buildInference(run).deployment.spec!.template.spec!.containers;
    expect(engine!.volumeMounts).to.deep.include({ name: "data", mountPath: "/data" });
    expect(sidecar!.volumeMounts).to.deep.include({ name: "data", mountPath: "/data" });
    expect(engine!.env).to.deep.include({ name: "NCCL_DEBUG", value: "WARN" });
    expect(sidecar!.env!.map((e) => e.name)).to.not.include("NCCL_DEBUG");
  });

  it("merges into the worker pod of a pool", () => {
    const spec = buildWorkerDeployment(resolvedPool({ podOverrides: overrides }), undefined, 1).spec!.template
      .spec!;
    expect(spec.imagePullSecrets).to.deep.equal([{ name: "regcred" }]);
    expect(spec.containers[0]!.env).to.deep.include({ name: "NCCL_DEBUG", value: "WARN" });
  });

  it("gives every run pod the operator's default pull secrets, merged with a role's own", () => {
    const images = { ...BUILTIN_IMAGES, pullSecrets: ["regcred"] };
    const run = resolvedRun({
      model: { name: "/m" },
      inference: {},
      trainer: { podOverrides: { imagePullSecrets: [{ name: "team" }] } },
    });
    expect(buildTrainerJob(run, 0, images).spec!.template.spec!.imagePullSecrets).to.deep.equal([
      { name: "regcred" },
      { name: "team" },
    ]);
    expect(buildInference(run, images).deployment.spec!.template.spec!.imagePullSecrets).to.deep.equal([
      { name: "regcred" },
    ]);
    const w = buildWorkerDeployment(resolvedPool(), undefined, 1, images).spec!.template.spec!;
    expect(w.imagePullSecrets).to.deep.equal([{ name: "regcred" }]);
    expect(buildTrainerJob(resolvedRun(), 0).spec!.template.spec!.imagePullSecrets).to.equal(undefined);
  });

  const conflicts: [string, object, RegExp][] = [
    [
      "an operator env var",
      { env: [{ name: "NNODES", value: "9" }] },
      /spec.trainer.podOverrides.env\[0\].name: NNODES is set by the operator/,
    ],
    ["any L0_ variable", { env: [{ name: "L0_TRAINER_X", value: "1" }] }, /env\[0\].name: L0_TRAINER_X/],
    [
      "an operator volume",
      { volumes: [{ name: "checkpoints", emptyDir: {} }] },
      /volumes\[0\].name: volume checkpoints is the operator's/,
    ],
    [
      "an operator mount path",
      { volumeMounts: [{ name: "x", mountPath: "/dev/shm" }] },
      /volumeMounts\[0\].mountPath: \/dev\/shm is mounted by the operator/,
    ],
    [
      "an operator label",
      { labels: { "app.kubernetes.io/component": "x" } },
      /spec.trainer.podOverrides.labels: label app.kubernetes.io\/component/,
    ],
  ];
  for (const [what, podOverrides, error] of conflicts)
    it(`refuses ${what}, naming the field`, () => {
      const v = validateRun(runManifest("qa", { trainer: { podOverrides } }) as never);
      expect("invalid" in v && v.invalid.message).to.match(error);
      // The pod is still safe if built anyway: the operator's value wins.
      const job = buildTrainerJob(resolvedRun({ trainer: { podOverrides } }), 0);
      expect(job.spec!.template.spec!.containers[0]!.env!.filter((e) => e.name === "NNODES")).to.have.length(
        1,
      );
    });

  it("refuses a conflict in a pool's overrides, naming the field", () => {
    const v = validatePool(
      poolManifest("p", { podOverrides: { volumes: [{ name: "tmp", emptyDir: {} }] } }) as never,
    );
    expect("invalid" in v && v.invalid.message).to.match(/spec.podOverrides.volumes\[0\].name: volume tmp/);
  });
});
