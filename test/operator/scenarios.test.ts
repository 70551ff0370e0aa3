// Operator scenarios that run against any API server (test/operator/cluster.ts):
//   L0_TEST_KUBECONFIG=~/.kube/config npx mocha --no-config -n import=tsx --timeout 120000 \
//     test/operator/scenarios.test.ts
// against a cluster with the CRDs installed (kubectl apply -f crds/) and a Job/Deployment
// controller and garbage collector (kube-controller-manager); no kubelet is needed: the tests
// write pod status as a kubelet would. Without L0_TEST_KUBECONFIG they run against the in-process
// API server's own HTTPS endpoint through a kubeconfig file, so CI proves the mode end to end.
import { expect } from "chai";
import { LEADER_ELECTION_RULES, OPERATOR_RULES, allows } from "../../operator/rbac.js";
import { type Cluster, openCluster } from "./cluster.js";
import { cond, eventually, fakeHub, rbacOf } from "./harness.js";

const EXTERNAL = process.env.L0_TEST_KUBECONFIG;

const run = (ns: string, name: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: "l0.dev/v1alpha1",
  kind: "TrainingRun",
  metadata: { name, namespace: ns },
  spec: {
    model: { name: "tiny" },
    dataset: { path: "/data/train.jsonl" },
    trainer: { gpusPerNode: 0, maxRestarts: 2 },
    workers: { replicas: 2 },
    ...spec,
  },
});

describe(`operator scenarios on ${EXTERNAL ? `the cluster of ${EXTERNAL}` : "the in-process API server over HTTPS"}`, function () {
  this.timeout(EXTERNAL ? 180_000 : 30_000);
  let c: Cluster;
  beforeEach(async () => {
    c = await openCluster(EXTERNAL);
  });
  afterEach(async function () {
    const denied = c.requests
      .map((r) => rbacOf(r.method, r.path))
      .filter((r) => !allows([...OPERATOR_RULES, ...LEADER_ELECTION_RULES], r.group, r.resource, r.verb));
    await c.stop();
    expect(denied, "requests outside operator/rbac.ts").to.deep.equal([]);
  });

  const get = (name: string) => c.read("TrainingRun", name);
  const wait = <T>(fn: () => T | Promise<T>, what: string) => eventually(fn, what, c.waitMs);
  const trainerPods = async (name: string, attempt = 0) =>
    (await c.pods(`l0.dev/run=${name},app.kubernetes.io/component=trainer,l0.dev/attempt=${attempt}`)).filter(
      (p) => !p.metadata?.deletionTimestamp && !["Failed", "Succeeded"].includes(p.status?.phase),
    );

  it("creates the run's children with owner references and reports Initializing", async () => {
    await c.startOperator();
    await c.api.create("TrainingRun", run(c.ns, "a"));
    const r = await wait(async () => {
      const o = await get("a");
      return o?.status?.phase === "Initializing" && o;
    }, "Initializing");
    for (const [kind, name] of [
      ["Secret", "a-token"],
      ["ConfigMap", "a-config"],
      ["Service", "a-hub"],
      ["NetworkPolicy", "a-trainer"],
      ["Job", "a-trainer-0"],
      ["AgentWorkerPool", "a"],
    ] as const) {
      const o = await wait(() => c.read(kind, name), `${kind} ${name}`);
      expect(o.metadata?.ownerReferences?.[0], `${kind} ${name}`).to.include({
        uid: r.metadata!.uid,
        controller: true,
      });
    }
    const d = await wait(() => c.read("Deployment", "a-workers"), "worker Deployment");
    expect(d.spec.replicas).to.equal(2);
    expect((d.metadata?.managedFields ?? []).map((m) => m.manager)).to.include("l0-operator");
  });

  it("is Running with the hub's figures once a trainer pod is ready", async () => {
    const hub = fakeHub();
    hub.set({ step: 3, maxSteps: 10, policyVersion: 3, rewardMean: 0.5, backlog: 4 });
    await c.startOperator({ hub, statsIntervalMs: 100 });
    await c.api.create("TrainingRun", run(c.ns, "a"));
    const [pod] = await wait(async () => {
      const p = await trainerPods("a");
      return p.length === 1 && p;
    }, "trainer pod");
    await c.startPod(pod!);
    const r = await wait(async () => {
      const o = await get("a");
      return o?.status?.phase === "Running" && o;
    }, "Running");
    expect(r.status).to.include({ step: 3, policyVersion: 3, rewardMean: 0.5, backlog: 4 });
    expect(cond(r, "Ready").status).to.equal("True");
  });

  it("gang-restarts the trainer when its pod fails, with the trainer's reason", async () => {
    await c.startOperator();
    await c.api.create("TrainingRun", run(c.ns, "a"));
    const [pod] = await wait(async () => {
      const p = await trainerPods("a");
      return p.length === 1 && p;
    }, "trainer pod");
    await c.failPod(pod!, 1, "WeightSyncTimeout: v3 not served within 600000 ms");
    const r = await wait(async () => {
      const o = await get("a");
      return o?.status?.restarts === 1 && o;
    }, "restart counted");
    expect(cond(r, "Progressing").message).to.contain("(WeightSyncTimeout): v3 not served within 600000 ms");
    await wait(() => c.read("Job", "a-trainer-1"), "attempt 1");
    await wait(async () => !(await c.read("Job", "a-trainer-0")), "attempt 0 deleted");
  });

  it("suspends: the trainer Job suspended and the workers at zero; resumes", async () => {
    await c.startOperator();
    await c.api.create("TrainingRun", run(c.ns, "a"));
    await wait(() => c.read("Deployment", "a-workers"), "workers");
    await c.api.mergePatch("TrainingRun", c.ns, "a", { spec: { suspend: true } });
    await wait(async () => (await get("a"))?.status?.phase === "Suspended", "Suspended");
    await wait(async () => (await c.read("Job", "a-trainer-0"))?.spec.suspend === true, "Job suspended");
    await wait(async () => (await c.read("Deployment", "a-workers"))?.spec.replicas === 0, "workers at zero");
    await c.api.mergePatch("TrainingRun", c.ns, "a", { spec: { suspend: false } });
    await wait(async () => (await c.read("Deployment", "a-workers"))?.spec.replicas === 2, "workers back");
  });

  it("deleting a run deletes what it owns", async () => {
    await c.startOperator();
    await c.api.create("TrainingRun", run(c.ns, "a"));
    await wait(() => c.read("Deployment", "a-workers"), "workers");
    await c.api.delete("TrainingRun", c.ns, "a");
    await wait(async () => !(await get("a")), "run gone");
    for (const [kind, name] of [
      ["Secret", "a-token"],
      ["ConfigMap", "a-config"],
      ["Job", "a-trainer-0"],
      ["AgentWorkerPool", "a"],
      ["Deployment", "a-workers"],
    ] as const)
      await wait(async () => !(await c.read(kind, name)), `${kind} ${name} gone`);
  });

  it("a run name that cannot name its children fails with InvalidName and creates nothing", async () => {
    await c.startOperator();
    await c.api.create("TrainingRun", run(c.ns, "qa.v2"));
    const r = await wait(async () => {
      const o = await get("qa.v2");
      return o?.status?.phase === "Failed" && o;
    }, "Failed");
    expect(cond(r, "Failed")).to.include({ reason: "InvalidName" });
    expect(await c.read("Secret", "qa.v2-token")).to.equal(undefined);
  });
});
