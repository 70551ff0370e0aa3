// Scenario tests of the TrainingRun lifecycle against the in-process API server.
import { expect } from "chai";
import { type Env, TR, cond, eventually, getPool, getRun, run, startEnv } from "./harness.js";

describe("operator: TrainingRun lifecycle", function () {
  this.timeout(20_000);
  let env: Env;
  beforeEach(async () => {
    env = await startEnv({ kubelet: "ready", jobPods: "manual" });
  });
  afterEach(async () => env.stop());

  it("creates a run's children with owner references, and reports Initializing", async () => {
    await env.startOperator();
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    const r = await eventually(() => {
      const o = getRun(env, "a");
      return o?.status?.observedGeneration === 1 && o.status.phase !== "Pending" && o;
    }, "run a status");
    const uid = r.metadata.uid;
    for (const [apiVersion, kind, name] of [
      ["v1", "Secret", "a-token"],
      ["v1", "ConfigMap", "a-config"],
      ["v1", "Service", "a-trainer"],
      ["v1", "Service", "a-hub"],
      ["batch/v1", "Job", "a-trainer-0"],
      ["l0.dev/v1alpha1", "AgentWorkerPool", "a"],
    ]) {
      const o = env.kube.get(apiVersion!, kind!, "default", name!);
      expect(o, `${kind} ${name}`).to.exist;
      expect(o!.metadata.ownerReferences[0]).to.include({ uid, controller: true, kind: "TrainingRun" });
    }
    const pool = await eventually(
      () => env.kube.get("apps/v1", "Deployment", "default", "a-workers"),
      "worker deployment",
    );
    expect(pool.spec.replicas).to.equal(2);
    expect(r.metadata.finalizers).to.include("l0.dev/finalizer");
    expect(cond(r, "Progressing").status).to.equal("True");
  });
});
