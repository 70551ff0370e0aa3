// Scenario tests of the TrainingRun lifecycle against the in-process API server, through real HTTP.
import { expect } from "chai";
import { mergePatch } from "../kube/testkit.js";
import { LEADER_ELECTION_RULES, OPERATOR_RULES, allows } from "../../operator/rbac.js";
import {
  type Env,
  TR,
  cond,
  eventually,
  fakeHub,
  getPool,
  getRun,
  rbacOf,
  run,
  startEnv,
} from "./harness.js";

const J = (env: Env, name: string) => env.kube.get("batch/v1", "Job", "default", name);
const D = (env: Env, name: string) => env.kube.get("apps/v1", "Deployment", "default", name);

describe("operator: TrainingRun lifecycle", function () {
  this.timeout(20_000);
  let env: Env;
  beforeEach(async () => {
    env = await startEnv({ kubelet: "ready", jobPods: "manual" });
  });
  afterEach(async () => {
    // Every request the operator made in the scenario is allowed by THE rule list (operator/rbac.ts).
    const denied = env.requests
      .map((r) => rbacOf(r.method, r.path))
      .filter((r) => !allows([...OPERATOR_RULES, ...LEADER_ELECTION_RULES], r.group, r.resource, r.verb));
    await env.stop();
    expect(denied, "requests outside operator/rbac.ts").to.deep.equal([]);
  });

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
      ["networking.k8s.io/v1", "NetworkPolicy", "a-trainer"],
      ["batch/v1", "Job", "a-trainer-0"],
      ["l0.dev/v1alpha1", "AgentWorkerPool", "a"],
    ]) {
      const o = env.kube.get(apiVersion!, kind!, "default", name!);
      expect(o, `${kind} ${name}`).to.exist;
      expect(o!.metadata.ownerReferences[0]).to.include({ uid, controller: true, kind: "TrainingRun" });
    }
    const cm = env.kube.get("v1", "ConfigMap", "default", "a-config")!;
    const runJson = JSON.parse(cm.data["run.json"]);
    expect(runJson.spec.algorithm.name, "run.json carries schema defaults").to.equal("reinforce_pp");
    const deploy = await eventually(() => D(env, "a-workers"), "worker deployment");
    expect(deploy.spec.replicas).to.equal(2);
    expect(deploy.metadata.ownerReferences[0]).to.include({ kind: "AgentWorkerPool", name: "a" });
    expect(r.metadata.finalizers).to.include("l0.dev/finalizer");
    expect(cond(r, "Progressing").status).to.equal("True");
    expect(cond(r, "Ready").status).to.equal("False");
  });

  it("reports Running with step, policy version, reward and backlog from the hub", async () => {
    const hub = fakeHub();
    hub.set({ step: 7, maxSteps: 20, policyVersion: 7, rewardMean: 0.625, backlog: 12 });
    await env.startOperator({ hub, statsIntervalMs: 50 });
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    const r = await eventually(
      () => getRun(env, "a")?.status?.phase === "Running" && getRun(env, "a"),
      "Running",
    );
    expect(r.status).to.include({ step: 7, policyVersion: 7, rewardMean: 0.625, backlog: 12, maxSteps: 20 });
    expect(cond(r, "Ready").status).to.equal("True");
    await eventually(() => getRun(env, "a")?.status?.workers === 2, "ready workers counted");
    hub.fail("connection refused");
    await eventually(
      () => cond(getRun(env, "a"), "Degraded")?.reason === "HubUnreachable",
      "Degraded HubUnreachable",
    );
  });

  it("updates children when the spec changes and keeps fields it does not own", async () => {
    await env.startOperator();
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(() => D(env, "a-workers"), "worker deployment");
    // Someone else's label on our Deployment survives our update.
    await env.apps.patchNamespacedDeployment(
      { name: "a-workers", namespace: "default", body: { metadata: { labels: { team: "ml" } } } },
      mergePatch,
    );
    await env.custom.patchNamespacedCustomObject(
      { ...TR, name: "a", body: { spec: { workers: { replicas: 3, episodesPerWorker: 4 } } } },
      mergePatch,
    );
    const d = await eventually(() => {
      const x = D(env, "a-workers");
      const eps = x?.spec.template.spec.containers[0].env.find((e: any) => e.name === "L0_WORKER_EPISODES");
      return x?.spec.replicas === 3 && eps?.value === "4" && x;
    }, "deployment follows the spec");
    expect(d.metadata.labels.team).to.equal("ml");
    expect(getPool(env, "a")!.spec.episodesPerWorker).to.equal(4);
    const cm = env.kube.get("v1", "ConfigMap", "default", "a-config")!;
    expect(JSON.parse(cm.data["run.json"]).spec.workers.episodesPerWorker).to.equal(4);
  });

  it("puts back a child deleted or edited by hand, but never rotates the token", async () => {
    await env.startOperator();
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    const secret = await eventually(() => env.kube.get("v1", "Secret", "default", "a-token"), "token");
    await eventually(() => env.kube.get("v1", "Service", "default", "a-hub"), "hub service");
    await env.core.deleteNamespacedConfigMap({ name: "a-config", namespace: "default" });
    await env.core.deleteNamespacedService({ name: "a-hub", namespace: "default" });
    await env.core.patchNamespacedService(
      { name: "a-trainer", namespace: "default", body: { spec: { publishNotReadyAddresses: false } } },
      mergePatch,
    );
    await eventually(() => env.kube.get("v1", "ConfigMap", "default", "a-config"), "config recreated");
    await eventually(() => env.kube.get("v1", "Service", "default", "a-hub"), "hub service recreated");
    await eventually(
      () => env.kube.get("v1", "Service", "default", "a-trainer")?.spec.publishNotReadyAddresses === true,
      "edit reverted",
    );
    expect(env.kube.get("v1", "Secret", "default", "a-token")!.data.token).to.equal(secret.data.token);
  });

  it("gang-restarts the trainer on failure, then fails the run after maxRestarts", async () => {
    await env.startOperator();
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("a", { trainer: { gpusPerNode: 0, nodes: 2, maxRestarts: 2 } }),
    });
    for (const attempt of [0, 1, 2]) {
      await eventually(() => J(env, `a-trainer-${attempt}`), `trainer attempt ${attempt}`);
      const pods = await eventually(() => {
        const p = env.kube.sim.activeJobPods(`a-trainer-${attempt}`);
        return p.length === 2 && p;
      }, `two pods of attempt ${attempt}`);
      // The first attempt ends with the trainer's own termination message; the others are killed.
      if (attempt === 0)
        env.kube.sim.failPod(
          pods[1]!.metadata.name,
          1,
          "default",
          "WeightSyncTimeout: v3 not served by every engine within 600000 ms: e1 serves v2",
        );
      else env.kube.sim.failPod(pods[1]!.metadata.name, 137);
      if (attempt < 2) {
        const r = await eventually(
          () => getRun(env, "a")?.status?.restarts === attempt + 1 && getRun(env, "a"),
          `restart ${attempt + 1} counted`,
        );
        if (attempt === 0)
          // The run's conditions say why, in the trainer's words.
          expect(cond(r, "Progressing")!.message).to.contain(
            "trainer exited 1 (WeightSyncTimeout): v3 not served by every engine within 600000 ms: e1 serves v2",
          );
        await eventually(() => !J(env, `a-trainer-${attempt}`), `failed attempt ${attempt} deleted`);
      }
    }
    const r = await eventually(
      () => getRun(env, "a")?.status?.phase === "Failed" && getRun(env, "a"),
      "run Failed",
    );
    expect(r.status.restarts).to.equal(2);
    expect(cond(r, "Failed")).to.include({ status: "True", reason: "BackoffLimitExceeded" });
    expect(r.status.completionTime).to.be.a("string");
    expect(J(env, "a-trainer-2"), "the last Job is kept for its logs").to.exist;
    expect(J(env, "a-trainer-3")).to.not.exist;
    await eventually(
      () => getPool(env, "a")?.spec.replicas === 0 && D(env, "a-workers")?.spec.replicas === 0,
      "workers at zero",
    );
  });

  it("suspends (workers to zero, trainer pods gone, identity kept) and resumes", async () => {
    await env.startOperator();
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(() => env.kube.sim.activeJobPods("a-trainer-0").length === 1, "trainer pod");
    const token = env.kube.get("v1", "Secret", "default", "a-token")!.data.token;
    await env.custom.patchNamespacedCustomObject(
      { ...TR, name: "a", body: { spec: { suspend: true } } },
      mergePatch,
    );
    await eventually(() => getRun(env, "a")?.status?.phase === "Suspended", "Suspended");
    await eventually(() => J(env, "a-trainer-0")?.spec.suspend === true, "job suspended");
    await eventually(() => env.kube.sim.activeJobPods("a-trainer-0").length === 0, "trainer pods deleted");
    await eventually(() => D(env, "a-workers")?.spec.replicas === 0, "workers at zero");
    await env.custom.patchNamespacedCustomObject(
      { ...TR, name: "a", body: { spec: { suspend: false } } },
      mergePatch,
    );
    // test/kube's Job simulation counts the pods a suspension deleted as failures (a real Job
    // controller does not), so on resume it may fail the Job and the operator gang-restarts it:
    // follow whichever Job is current rather than assume attempt 0 (reported to the lead).
    await eventually(() => {
      const job = getRun(env, "a")?.status?.trainerJob;
      return job && env.kube.sim.activeJobPods(job).length === 1;
    }, "trainer pod back");
    await eventually(() => D(env, "a-workers")?.spec.replicas === 2, "workers back");
    await eventually(
      () => getRun(env, "a")?.status?.phase === "Initializing" && getRun(env, "a"),
      "Initializing",
    );
    expect(env.kube.get("v1", "Secret", "default", "a-token")!.data.token).to.equal(token);
  });

  it("completes: Succeeded and Complete, workers to zero, trainer Job kept", async () => {
    await env.startOperator({ resyncMs: 100 });
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(() => J(env, "a-trainer-0"), "trainer job");
    env.kube.sim.completeJob("a-trainer-0");
    const r = await eventually(
      () => getRun(env, "a")?.status?.phase === "Succeeded" && getRun(env, "a"),
      "Succeeded",
    );
    expect(cond(r, "Complete")).to.include({ status: "True" });
    expect(cond(r, "Progressing")).to.include({ status: "False" });
    await eventually(() => D(env, "a-workers")?.spec.replicas === 0, "workers at zero");
    expect(J(env, "a-trainer-0")).to.exist;
    // Terminal: later resyncs keep the recorded end and write nothing.
    await eventually(() => getRun(env, "a")?.status?.workers === 0, "no ready workers counted");
    await eventually(
      () =>
        D(env, "a-workers")?.status?.replicas === 0 &&
        getPool(env, "a")?.status?.replicas === 0 &&
        !getPool(env, "a")?.status?.readyReplicas &&
        getRun(env, "a")?.status?.workers === 0,
      "pods gone, and every status says so",
    );
    await new Promise((res) => setTimeout(res, 200));
    const before = getRun(env, "a")!;
    await new Promise((res) => setTimeout(res, 400));
    expect(
      getRun(env, "a")!.metadata.resourceVersion,
      JSON.stringify([
        before.status,
        getRun(env, "a")!.status,
        before.metadata.finalizers,
        getRun(env, "a")!.metadata.finalizers,
      ]),
    ).to.equal(before.metadata.resourceVersion);
    expect(cond(getRun(env, "a"), "Complete")).to.include({ reason: "TrainerSucceeded" });
  });
});
