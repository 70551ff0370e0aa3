// Checkpoints that survive: without checkpoint.claimName the operator creates <run>-checkpoints
// from checkpoint.storage, owned by the run (or retained: no owner, created once, never reported
// as someone else's), and every trainer attempt mounts it. Against the in-process API server.
import { expect } from "chai";
import { parseTrainingRun } from "../../lib/run-config.js";
import { buildCheckpointClaim, checkpointVolume } from "../../operator/trainingrun/checkpoint-claim.js";
import { runManifest } from "../fixtures/runs.js";
import { type Env, TR, eventually, getRun, run, startEnv } from "./harness.js";

const PVC = (env: Env, name: string) => env.kube.get("v1", "PersistentVolumeClaim", "default", name);

describe("operator: checkpoint claim", function () {
  this.timeout(20_000);

  it("builds the claim from checkpoint.storage, or none, and the trainer's volume", () => {
    const r = (checkpoint: object, trainer: object = {}) =>
      parseTrainingRun(runManifest("qa", { checkpoint, trainer }));
    const owned = r({ storage: { size: "500Gi", storageClassName: "fast" } });
    const claim = buildCheckpointClaim(owned)!;
    expect(claim.metadata!.name).to.equal("qa-checkpoints");
    expect(claim.spec).to.deep.equal({
      accessModes: ["ReadWriteMany"],
      resources: { requests: { storage: "500Gi" } },
      storageClassName: "fast",
    });
    expect(claim.metadata!.ownerReferences).to.have.length(1);
    expect(checkpointVolume(owned).persistentVolumeClaim!.claimName).to.equal("qa-checkpoints");
    const kept = buildCheckpointClaim(r({ storage: { size: "1Gi", retain: true } }))!;
    expect(kept.metadata!.ownerReferences, "retained: no owner").to.equal(undefined);
    expect(buildCheckpointClaim(r({ claimName: "mine" }))).to.equal(undefined);
    expect(checkpointVolume(r({ claimName: "mine" })).persistentVolumeClaim!.claimName).to.equal("mine");
    expect(checkpointVolume(r({})).emptyDir).to.deep.equal({});
  });

  const bad: [string, object, object, RegExp][] = [
    [
      "claimName with storage",
      { claimName: "x", storage: { size: "1Gi" } },
      {},
      /checkpoint.storage: must not be set with claimName/,
    ],
    [
      "ReadWriteOnce on two nodes",
      { storage: { size: "1Gi", accessMode: "ReadWriteOnce" } },
      { nodes: 2 },
      /accessMode: must be ReadWriteMany/,
    ],
  ];
  for (const [what, checkpoint, trainer, error] of bad)
    it(`rejects ${what}, naming the field`, () => {
      expect(() => parseTrainingRun(runManifest("qa", { checkpoint, trainer }))).to.throw(error);
    });

  let env: Env;
  beforeEach(async () => {
    env = await startEnv({ kubelet: "ready", jobPods: "manual" });
  });
  afterEach(() => env.stop());

  it("creates the owned claim and mounts it; a retained one is created once and left alone", async () => {
    await env.startOperator({ resyncMs: 100 });
    const storage = { size: "10Gi" };
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a", { checkpoint: { storage } }) });
    const pvc = await eventually(() => PVC(env, "a-checkpoints"), "claim");
    expect(pvc.metadata.ownerReferences[0].name).to.equal("a");
    const job = await eventually(() => env.kube.get("batch/v1", "Job", "default", "a-trainer-0"), "job");
    expect(job.spec.template.spec.volumes).to.deep.include({
      name: "checkpoints",
      persistentVolumeClaim: { claimName: "a-checkpoints" },
    });
    const retained = { storage: { size: "10Gi", retain: true } };
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("b", { checkpoint: retained }) });
    const kept = await eventually(() => PVC(env, "b-checkpoints"), "retained claim");
    expect(kept.metadata.ownerReferences ?? []).to.have.length(0);
    await eventually(() => getRun(env, "b")?.status?.phase === "Initializing", "b reconciled");
    const events = env.kube.list("v1", "Event", "default").filter((e: any) => e.reason === "NameTaken");
    expect(events, "a retained claim is not someone else's").to.have.length(0);
  });
});
