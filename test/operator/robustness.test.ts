// Scenario tests of the operator's robustness: deletion and ownership, invalid specs, restarts,
// leader election, API faults (409, 500, 410 Gone, cut watches) and idle resyncs.
import { expect } from "chai";
import { createRegistry } from "../../lib/metrics.js";
import { tlsFromSecretData } from "../../lib/tls.js";
import { apiError, mergePatch } from "../kube/testkit.js";
import {
  AWP,
  type Env,
  TR,
  cond,
  eventually,
  getPool,
  getRun,
  rbacOf,
  run,
  startEnv,
  tableRecommender,
} from "./harness.js";
import { OPERATOR_RULES, allows } from "../../operator/rbac.js";

const converged = (env: Env, name: string) => {
  const r = getRun(env, name);
  return (
    r?.status?.observedGeneration === r?.metadata.generation &&
    r?.status?.phase === "Initializing" &&
    env.kube.get("apps/v1", "Deployment", "default", `${name}-workers`) &&
    getPool(env, name)?.status?.observedGeneration === getPool(env, name)?.metadata.generation
  );
};
const countKinds = (env: Env) =>
  Object.fromEntries(
    (
      [
        ["v1", "Secret"],
        ["v1", "ConfigMap"],
        ["v1", "Service"],
        ["batch/v1", "Job"],
        ["apps/v1", "Deployment"],
        ["l0.dev/v1alpha1", "AgentWorkerPool"],
        ["policy/v1", "PodDisruptionBudget"],
      ] as const
    ).map(([v, k]) => [
      k,
      env.kube.list(v, k, "default").filter((o) => !o.metadata.deletionTimestamp).length,
    ]),
  );

describe("operator: ownership, faults and restarts", function () {
  this.timeout(30_000);
  let env: Env;
  beforeEach(async () => {
    env = await startEnv({ kubelet: "ready", jobPods: "manual" });
  });
  afterEach(async () => env.stop());

  it("deleting a run deletes what it owns and nothing else", async () => {
    await env.startOperator();
    // Look-alikes the run does not own: same labels, and a pool that points at the run.
    await env.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "a-notes", labels: { "l0.dev/run": "a" } }, data: { x: "1" } },
    });
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(() => converged(env, "a"), "run converged");
    await env.custom.deleteNamespacedCustomObject({ ...TR, name: "a" });
    await eventually(() => !getRun(env, "a"), "run gone (finalizer released)");
    await env.kube.settled();
    await eventually(() => !env.kube.get("apps/v1", "Deployment", "default", "a-workers"), "workers gone");
    for (const [v, k, n] of [
      ["v1", "Secret", "a-token"],
      ["v1", "ConfigMap", "a-config"],
      ["v1", "Service", "a-hub"],
      ["batch/v1", "Job", "a-trainer-0"],
      ["l0.dev/v1alpha1", "AgentWorkerPool", "a"],
    ])
      expect(env.kube.get(v!, k!, "default", n!), `${k} ${n}`).to.not.exist;
    expect(env.kube.get("v1", "ConfigMap", "default", "a-notes")).to.exist;
  });

  it("a referenced pool is not the run's: it survives the run and goes to zero without it", async () => {
    await env.startOperator();
    await env.custom.createNamespacedCustomObject({
      ...AWP,
      body: {
        apiVersion: "l0.dev/v1alpha1",
        kind: "AgentWorkerPool",
        metadata: { name: "p" },
        spec: { hubRef: { name: "b" }, replicas: 3 },
      },
    });
    await eventually(
      () => cond(getPool(env, "p"), "Ready")?.reason === "RunNotFound",
      "pool waits for its run",
    );
    const body = run("b", { workers: undefined, workerPoolRef: { name: "p" } });
    delete body.spec.workers;
    await env.custom.createNamespacedCustomObject({ ...TR, body });
    await eventually(
      () => env.kube.get("apps/v1", "Deployment", "default", "p-workers")?.spec.replicas === 3,
      "pool scaled up",
    );
    await eventually(() => getRun(env, "b")?.status?.workerPool === "p", "run names its pool");
    await env.custom.deleteNamespacedCustomObject({ ...TR, name: "b" });
    await eventually(() => !getRun(env, "b"), "run gone");
    await eventually(
      () => env.kube.get("apps/v1", "Deployment", "default", "p-workers")?.spec.replicas === 0,
      "pool at zero",
    );
    expect(getPool(env, "p")).to.exist;
  });

  it("an invalid spec that passed the schema fails the run with the field named, without a hot loop", async () => {
    const registry = createRegistry({ defaultMetrics: false });
    // Both inline workers and a reference: the CRD's CEL rule forbids it, so the API server
    // refuses it on create; an object stored before the rule existed (a CRD upgrade) still has it.
    const refused = await apiError(() =>
      env.custom.createNamespacedCustomObject({ ...TR, body: run("bad", { workerPoolRef: { name: "x" } }) }),
    );
    expect(refused.code).to.equal(422);
    const t = env.kube.types.byKind("l0.dev/v1alpha1", "TrainingRun")!;
    const stored = env.kube.store.create(t, "default", run("bad"));
    const spec = { ...stored.spec, workerPoolRef: { name: "x" } };
    env.kube.store.put(t, { ...stored, metadata: { ...stored.metadata, generation: 2 }, spec });
    await env.startOperator({ registry });
    const r = await eventually(
      () => getRun(env, "bad")?.status?.phase === "Failed" && getRun(env, "bad"),
      "Failed",
    );
    expect(cond(r, "Degraded")).to.include({ status: "True", reason: "InvalidSpec" });
    expect(cond(r, "Failed")!.message).to.match(/spec\.workers and spec\.workerPoolRef/);
    expect(env.kube.get("v1", "Secret", "default", "bad-token"), "nothing created").to.not.exist;
    const before = env.requests.length;
    await new Promise((res) => setTimeout(res, 300));
    expect(env.requests.length - before, "no requests while idle").to.be.lessThan(3);
    // Fixing the spec recovers.
    await env.custom.patchNamespacedCustomObject(
      { ...TR, name: "bad", body: { spec: { workerPoolRef: null } } },
      mergePatch,
    );
    await eventually(() => getRun(env, "bad")?.status?.phase === "Initializing", "recovers after the fix");
  });

  it("an operator restarted mid-flight adopts what exists and creates no duplicates", async () => {
    const names = ["a", "b", "c", "d", "e", "f"];
    // Slow writes so the first operator is stopped with work half done.
    env.kube.faults.delay({ verb: "create" }, 30, 20);
    const op1 = await env.startOperator();
    for (const n of names) await env.custom.createNamespacedCustomObject({ ...TR, body: run(n) });
    await eventually(() => env.kube.list("v1", "Secret", "default").length >= 1, "some work done");
    await op1.stop();
    const tokens = Object.fromEntries(
      env.kube.list("v1", "Secret", "default").map((s) => [s.metadata.name, s.metadata.uid]),
    );
    expect(
      names.every((n) => converged(env, n)),
      "stopped mid-flight",
    ).to.equal(false);
    await env.startOperator();
    await eventually(() => names.every((n) => converged(env, n)), "converged after restart", 15_000);
    const per = names.length;
    expect(countKinds(env)).to.deep.equal({
      Secret: per,
      ConfigMap: per,
      Service: 2 * per,
      Job: per,
      Deployment: per,
      AgentWorkerPool: per,
      PodDisruptionBudget: per,
    });
    for (const [name, uid] of Object.entries(tokens))
      expect(env.kube.get("v1", "Secret", "default", name)!.metadata.uid, `${name} kept`).to.equal(uid);
  });

  it("two replicas: one leader reconciles; the other takes over when it stops", async () => {
    const le = (identity: string) => ({
      leaderElection: {
        namespace: "default",
        name: "l0-operator",
        identity,
        leaseDurationMs: 1000,
        renewDeadlineMs: 800,
        retryPeriodMs: 100,
      },
    });
    const a = await env.startOperator(le("a"));
    const b = await env.startOperator(le("b"));
    await eventually(() => a.leading || b.leading, "someone leads");
    await new Promise((r) => setTimeout(r, 300));
    expect([a.leading, b.leading].filter(Boolean)).to.have.length(1);
    const [leader, standby] = a.leading ? [a, b] : [b, a];
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(() => converged(env, "a"), "leader reconciles");
    await leader.stop();
    await eventually(() => standby.leading, "standby takes over", 5000);
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("b") });
    await eventually(() => converged(env, "b"), "new leader reconciles");
  });

  it("a leader that cannot renew its lease stops reconciling and reports the loss", async () => {
    let lost = 0;
    const m = await env.startOperator({
      leaderElection: {
        namespace: "default",
        name: "l0-operator",
        identity: "solo",
        leaseDurationMs: 1000,
        renewDeadlineMs: 300,
        retryPeriodMs: 50,
      },
      onLostLeadership: () => lost++,
    });
    await eventually(() => m.leading, "leads");
    env.kube.faults.fail({ verb: "update", resource: "leases" }, 500, 1000);
    await eventually(() => lost === 1 && !m.leading, "leadership lost", 5000);
    env.kube.faults.clear();
  });

  it("converges through 409, 500 and 410 faults and cut watches", async () => {
    const registry = createRegistry({ defaultMetrics: false });
    env.kube.faults.fail({ verb: "update", resource: "trainingruns", subresource: "status" }, 409, 2);
    env.kube.faults.fail({ verb: "create", resource: "jobs" }, 500, 2);
    env.kube.faults.fail({ verb: "patch", resource: "trainingruns" }, 409, 1);
    await env.startOperator({ registry });
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(() => converged(env, "a"), "converged despite faults");
    // Watches cut and history compacted: the informers relist (410 Gone) and still see new runs.
    env.kube.compact();
    env.kube.faults.cutWatches();
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("b") });
    await eventually(() => converged(env, "b"), "converged after 410");
    const metrics = await registry.metrics();
    expect(metrics).to.match(/l0_reconcile_total\{controller="trainingrun",result="conflict"\} [1-9]/);
    expect(metrics).to.match(/l0_reconcile_total\{controller="trainingrun",result="error"\} [1-9]/);
    expect(metrics).to.match(/l0_workqueue_retries_total\{controller="trainingrun"\} [1-9]/);
    expect(metrics).to.match(/l0_reconcile_duration_seconds_count\{controller="trainingrun"\}/);
    expect(metrics).to.match(/l0_workqueue_depth\{controller="agentworkerpool"\}/);
  });

  it("an idle resync reconciles every object and writes nothing", async () => {
    const registry = createRegistry({ defaultMetrics: false });
    await env.startOperator({ resyncMs: 200, registry });
    for (const n of ["a", "b", "c"]) await env.custom.createNamespacedCustomObject({ ...TR, body: run(n) });
    await eventually(() => ["a", "b", "c"].every((n) => converged(env, n)), "converged");
    // Settling (pods turning ready, a conflict retried) ends; a resync that wrote would never let it.
    const writes = () => env.requests.filter((r) => !["GET", "WATCH"].includes(r.method)).length;
    let last = -1;
    await eventually(
      async () => {
        const n = writes();
        const quiet = n === last;
        last = n;
        if (!quiet) await new Promise((r) => setTimeout(r, 500));
        return quiet;
      },
      "no writes for 500 ms",
      10_000,
    );
    const reconciles = async () =>
      (await registry.getSingleMetric("l0_reconcile_total")!.get()).values.reduce((a, v) => a + v.value, 0);
    const r0 = await reconciles();
    const start = env.requests.length;
    // Two resyncs of all three runs (and their pools), however long a loaded machine takes.
    await eventually(async () => (await reconciles()) - r0 >= 6, "two resyncs of every object", 20_000);
    const during = env.requests.slice(start).filter((r) => !["GET", "WATCH"].includes(r.method));
    expect(during, JSON.stringify(during)).to.deep.equal([]);
  });

  it("resolves a pool's hub address and run token from the caches for the autoscaler", async () => {
    const m = await env.startOperator();
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("a", { trainer: { gpusPerNode: 0, hubPort: 7777 } }),
    });
    await eventually(() => converged(env, "a"), "converged");
    const pool = getPool(env, "a") as never;
    const target = await eventually(() => m.resolveHub(pool).catch(() => undefined), "hub resolved");
    const secret = env.kube.get("v1", "Secret", "default", "a-token")!;
    expect(target).to.deep.equal({
      address: "a-hub.default.svc:7777",
      token: Buffer.from(secret.data.token, "base64").toString("utf8"),
      tls: tlsFromSecretData(secret.data),
    });
    expect(target.tls, "the run's TLS material").to.not.equal(undefined);
    const orphan = { metadata: { namespace: "default", name: "x" }, spec: { hubRef: { name: "missing" } } };
    await m.resolveHub(orphan as never).then(
      () => expect.fail("resolved a missing run"),
      (err: Error) => expect(err.message).to.match(/missing not found/),
    );
  });

  it("an autoscaled pool follows the recommender through its scale field", async () => {
    let want = 1;
    const registry = createRegistry({ defaultMetrics: false });
    await env.startOperator({ recommender: tableRecommender(() => want, 40), registry });
    const series = async (name: string) =>
      (await registry.getSingleMetric(name)!.get()).values.map((v) => ({ ...v.labels, value: v.value }));
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("a", { workers: { autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 8 } } }),
    });
    await eventually(
      () => env.kube.get("apps/v1", "Deployment", "default", "a-workers")?.spec.replicas === 1,
      "at min",
    );
    want = 5;
    await eventually(() => getPool(env, "a")?.spec.replicas === 5, "pool spec.replicas follows");
    await eventually(
      () => env.kube.get("apps/v1", "Deployment", "default", "a-workers")?.spec.replicas === 5,
      "deployment follows",
    );
    const p = await eventually(
      () => getPool(env, "a")?.status?.desiredReplicas === 5 && getPool(env, "a"),
      "backlog in status",
    );
    expect(p.status.backlog).to.equal(40);
    expect(p.status.lastScaleTime).to.be.a("string");
    expect(p.status.selector).to.include("l0.dev/pool=a");
    expect(p.status.lastRecommendation).to.include({ replicas: 5, reason: "Test", message: "from the test" });
    // The chart's alert and dashboard series, per pool that exists.
    expect(await series("l0_pool_max_replicas")).to.deep.equal([
      { namespace: "default", pool: "a", value: 8 },
    ]);
    await eventually(
      async () => (await series("l0_pool_ready_replicas"))[0]?.value === 5,
      "ready replicas exported",
    );
    await env.custom.deleteNamespacedCustomObject({ ...TR, name: "a" });
    await eventually(
      async () => (await series("l0_pool_ready_replicas")).length === 0,
      "series of a gone pool",
    );
    expect(await series("l0_pool_max_replicas")).to.deep.equal([]);
  });
  it("marks each worker pod's deletion cost with its active episodes before a scale-down", async () => {
    let want = 4;
    const asked: string[][] = [];
    // Pod n of the Deployment (by name order) runs n episodes; one pod does not answer.
    const readEpisodes = (pods: { name: string }[]) => {
      asked.push(pods.map((p) => p.name));
      const names = pods.map((p) => p.name).sort();
      return Promise.resolve(new Map(names.slice(1).map((n, i) => [n, i + 1] as [string, number])));
    };
    await env.startOperator({ recommender: tableRecommender(() => want), readEpisodes });
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("a", { workers: { autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 8 } } }),
    });
    const pods = () =>
      env.kube
        .list("v1", "Pod", "default")
        .filter((p: any) => p.metadata.labels?.["l0.dev/pool"] === "a" && !p.metadata.deletionTimestamp);
    await eventually(() => pods().length === 4, "four worker pods");
    expect(asked, "no deletion-cost work on a scale-up").to.deep.equal([]);
    const before = env.requests.length;
    want = 2;
    await eventually(() => getPool(env, "a")?.spec.replicas === 2, "scaled down");
    expect(asked[0]!.length, "all four live pods read").to.equal(4);
    const reqs = env.requests.slice(before);
    const podPatch = reqs.findIndex((r) => r.method === "PATCH" && r.path.includes("/pods/"));
    const scale = reqs.findIndex(
      (r) => r.method === "PATCH" && r.path.split("?")[0]!.endsWith("/agentworkerpools/a"),
    );
    expect(podPatch, "pods annotated").to.be.greaterThan(-1);
    expect(podPatch, "before replicas are lowered").to.be.lessThan(scale);
    expect(
      reqs.filter((r) => r.method === "PATCH" && r.path.includes("/pods/")).length,
      "3 answered",
    ).to.equal(3);
    for (const r of reqs) {
      const need = rbacOf(r.method, r.path);
      expect(allows(OPERATOR_RULES, need.group, need.resource, need.verb), `${r.method} ${r.path}`).to.equal(
        true,
      );
    }
    const costs = env.kube
      .list("v1", "Pod", "default")
      .map((p: any) => p.metadata.annotations?.["controller.kubernetes.io/pod-deletion-cost"])
      .filter((c: unknown) => c !== undefined);
    expect(costs.length, "annotations on the pods").to.be.greaterThan(0);
  });
});
