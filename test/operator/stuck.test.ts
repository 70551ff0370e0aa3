// Every way a run or pool can be stuck on a real API server gets a condition with a reason and a
// message naming the object or field, and one Event (kstatus), instead of reporting healthy or
// retrying silently: pools that cannot start, names that cannot be children, specs the API
// refuses later, and specs that can never train.
import { expect } from "chai";
import * as k8s from "@kubernetes/client-node";
import { mergePatch } from "../kube/testkit.js";
import { AWP, type Env, TR, cond, eventually, getPool, getRun, run, startEnv } from "./harness.js";

const events = (env: Env, name: string, reason: string) =>
  env.kube
    .list("v1", "Event", "default")
    .filter((e) => e.involvedObject.name === name && e.reason === reason)
    .map((e) => e.message as string);
const degraded = (o: unknown) => cond(o, "Degraded") as { status: string; reason: string; message: string };
/** Waits until nothing is pending and lets queued reconciles run, then returns the request count. */
async function quiet(env: Env): Promise<number> {
  await env.kube.settled();
  await new Promise((r) => setTimeout(r, 200));
  return env.requests.length;
}

describe("operator: stuck runs and pools say why", function () {
  this.timeout(30_000);
  let env: Env;
  beforeEach(async () => {
    env = await startEnv({ kubelet: "ready", jobPods: "manual" });
  });
  afterEach(() => env.stop());

  it("a pool whose RuntimeClass is missing is Degraded naming it (and the run says so), until it exists", async () => {
    await env.startOperator();
    const sandbox = { mode: "runtimeClass", runtimeClassName: "gvisor" };
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("a", { workers: { replicas: 2, sandbox } }),
    });
    const d = await eventually(
      () => degraded(getPool(env, "a"))?.status === "True" && degraded(getPool(env, "a")),
      "pool Degraded",
    );
    expect(d.reason).to.equal("RuntimeClassNotFound");
    expect(d.message).to.contain(
      'Deployment a-workers cannot create worker pods: RuntimeClass "gvisor" (spec.sandbox.runtimeClassName)',
    );
    await eventually(() => degraded(getRun(env, "a"))?.reason === "WorkersDegraded", "run Degraded");
    expect(degraded(getRun(env, "a")).message).to.contain("AgentWorkerPool a: RuntimeClassNotFound");
    await eventually(() => events(env, "a", "WorkersDegraded").length === 1, "the run's Event");
    await quiet(env);
    expect(events(env, "a", "RuntimeClassNotFound"), "one Event on the pool").to.have.length(1);
    expect(events(env, "a", "WorkersDegraded"), "one on the run").to.have.length(1);
    await env.kc.makeApiClient(k8s.NodeV1Api).createRuntimeClass({
      body: { metadata: { name: "gvisor" }, handler: "runsc" },
    });
    await eventually(() => degraded(getPool(env, "a"))?.status === "False", "pool recovers");
    await eventually(() => getPool(env, "a")?.status?.readyReplicas === 2, "workers ready");
  });

  it("bwrap workers in a namespace enforcing Pod Security baseline: Degraded PodSecurityForbidden", async () => {
    await env.core.patchNamespace(
      {
        name: "default",
        body: { metadata: { labels: { "pod-security.kubernetes.io/enforce": "baseline" } } },
      },
      mergePatch,
    );
    await env.startOperator();
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    const d = await eventually(
      () => degraded(getPool(env, "a"))?.reason === "PodSecurityForbidden" && degraded(getPool(env, "a")),
      "Degraded",
    );
    expect(d.message).to.contain('namespace default enforces Pod Security "baseline:latest"');
    expect(d.message).to.contain('must not set securityContext.seccompProfile.type to "Unconfined"');
    // The trainer's pods are fine under baseline (RuntimeDefault, non-root).
    await eventually(() => env.kube.sim.activeJobPods("a-trainer-0").length === 1, "trainer pod admitted");
  });

  it("a run name that cannot name its children: InvalidName naming them, one Event, nothing created, no retries", async () => {
    await env.startOperator();
    const long = "r".repeat(52);
    for (const name of ["qa.v2", long])
      await env.custom.createNamespacedCustomObject({ ...TR, body: run(name) });
    const dotted = await eventually(
      () => getRun(env, "qa.v2")?.status?.phase === "Failed" && getRun(env, "qa.v2"),
      "qa.v2 Failed",
    );
    expect(cond(dotted, "Failed")).to.include({ reason: "InvalidName" });
    expect(cond(dotted, "Failed").message).to.contain('Service "qa.v2-trainer"');
    const tooLong = await eventually(
      () => getRun(env, long)?.status?.phase === "Failed" && getRun(env, long),
      "long Failed",
    );
    expect(cond(tooLong, "Failed").message).to.contain(
      `trainer pod hostname "${long}-trainer-2-0": 64 characters, at most 63`,
    );
    const before = await quiet(env);
    expect(env.kube.list("v1", "Secret", "default"), "no children").to.have.length(0);
    expect(events(env, "qa.v2", "InvalidName")).to.have.length(1);
    expect(await quiet(env), "no retries").to.equal(before);
  });

  it("an egress CIDR a NetworkPolicy refuses is named, on the run and on a pool", async () => {
    await env.startOperator();
    const tools = { egress: [{ cidr: "10.0.0.0/8" }, { cidr: "203.0.113.7/24" }] };
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("a", { workers: { replicas: 1, tools } }),
    });
    const r = await eventually(
      () => getRun(env, "a")?.status?.phase === "Failed" && getRun(env, "a"),
      "run Failed",
    );
    expect(cond(r, "Failed").message).to.equal(
      'spec.workers.tools.egress[1].cidr: "203.0.113.7/24": bits are set beyond the /24 prefix (did you mean the network address?)',
    );
    await env.custom.createNamespacedCustomObject({
      ...AWP,
      body: {
        apiVersion: "l0.dev/v1alpha1",
        kind: "AgentWorkerPool",
        metadata: { name: "p" },
        spec: { hubRef: { name: "b" }, tools: { egress: [{ cidr: "10.0.0.0/33" }] } },
      },
    });
    await eventually(() => degraded(getPool(env, "p"))?.reason === "InvalidSpec", "pool Degraded");
    expect(degraded(getPool(env, "p")).message).to.contain('spec.tools.egress[0].cidr: "10.0.0.0/33"');
  });

  it("a spec whose run.json passes the 1 MiB of a ConfigMap names the field that makes it big", async () => {
    await env.startOperator();
    const nodeSelector = Object.fromEntries(
      Array.from({ length: 1100 }, (_, i) => [`k${i}`, "v".repeat(1000)]),
    );
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("a", { trainer: { gpusPerNode: 0, nodeSelector } }),
    });
    // A 1 MiB object takes seconds to validate and copy on a loaded machine: wait longer.
    const r = await eventually(
      () => getRun(env, "a")?.status?.phase === "Failed" && getRun(env, "a"),
      "Failed",
      20_000,
    );
    expect(cond(r, "Failed").message).to.match(
      /^spec\.trainer\.nodeSelector: the run's settings \(run\.json, \d+ bytes\) exceed the 1 MiB/,
    );
    expect(env.kube.get("v1", "ConfigMap", "default", "a-config")).to.not.exist;
  });

  it("a child the API refuses for a reason no check foresaw: ChildRejected naming the child and the field", async () => {
    await env.startOperator();
    const resources = { requests: { cpu: "2" }, limits: { cpu: "1" } };
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("a", { workers: { replicas: 1, resources } }),
    });
    const d = await eventually(
      () => degraded(getPool(env, "a"))?.reason === "ChildRejected" && degraded(getPool(env, "a")),
      "pool Degraded",
    );
    expect(d.message).to.contain("Deployment a-workers was refused by the API server");
    expect(d.message).to.contain("spec.template.spec.containers[0].resources.requests");
    const before = await quiet(env);
    expect(await quiet(env), "no retry loop").to.equal(before);
  });

  it("specs that can never train, and a workerPoolRef to a pool that does not exist", async () => {
    await env.startOperator();
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("g1", { algorithm: { groupSize: 1, dynamicSampling: true } }),
    });
    const zero = { exactMatch: 0, f1: 0, hasAnswer: 0, format: 0, codeExecution: 0 };
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("r0", { reward: zero }) });
    const ref = run("b", { workerPoolRef: { name: "later" } });
    delete ref.spec.workers;
    await env.custom.createNamespacedCustomObject({ ...TR, body: ref });
    const failed = (n: string) =>
      getRun(env, n)?.status?.phase === "Failed" && cond(getRun(env, n), "Failed").message;
    expect(await eventually(() => failed("g1"), "g1")).to.match(
      /^spec\.algorithm\.groupSize: 1 with spec\.algorithm\.dynamicSampling true drops every group/,
    );
    expect(await eventually(() => failed("r0"), "r0")).to.match(/^spec\.reward: every weight is 0/);
    const d = await eventually(
      () => degraded(getRun(env, "b"))?.reason === "WorkerPoolNotFound" && degraded(getRun(env, "b")),
      "b Degraded",
    );
    expect(d.message).to.equal(
      'spec.workerPoolRef.name: AgentWorkerPool "later" does not exist in namespace default',
    );
    expect(getRun(env, "b")!.status.phase).to.not.equal("Failed");
    await env.custom.createNamespacedCustomObject({
      ...AWP,
      body: {
        apiVersion: "l0.dev/v1alpha1",
        kind: "AgentWorkerPool",
        metadata: { name: "later" },
        spec: { hubRef: { name: "b" } },
      },
    });
    // (The hub is not reachable in this test: Degraded moves on to HubUnreachable.)
    await eventually(() => degraded(getRun(env, "b"))?.reason !== "WorkerPoolNotFound", "pool found");
  });

  it("trainer pods no node can hold: Degraded TrainerUnschedulable naming the pod and the scheduler's reason", async () => {
    await env.startOperator({ statsIntervalMs: 50 });
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("a", { trainer: { gpusPerNode: 16 } }),
    });
    const d = await eventually(
      () => degraded(getRun(env, "a"))?.reason === "TrainerUnschedulable" && degraded(getRun(env, "a")),
      "Degraded",
    );
    expect(d.message).to.match(
      /^trainer pod a-trainer-0-0-[a-z0-9]{5} cannot be scheduled: 0\/1 nodes are available: 1 Insufficient nvidia\.com\/gpu\./,
    );
    expect(d.message).to.contain("spec.trainer.gpusPerNode 16");
    expect(getRun(env, "a")!.status.phase).to.equal("Initializing");
    // The Event follows the status write; later looks (every statsIntervalMs) add none.
    await eventually(() => events(env, "a", "TrainerUnschedulable").length === 1, "one Event");
    await new Promise((r) => setTimeout(r, 300));
    expect(events(env, "a", "TrainerUnschedulable")).to.have.length(1);
  });
});
