// The simulation: Deployment -> ReplicaSet -> Pods with status and conditions, scaling and
// template changes, Jobs (NonIndexed, Indexed, parallelism, backoffLimit) and kubelet commands.
import { expect } from "chai";
import { startKubeServer, type KubeServer } from "./server.js";
import { clients, type Clients, deployment, eventually, job } from "./testkit.js";

describe("kube server: controller and kubelet simulation", () => {
  let kube: KubeServer;
  let c: Clients;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds" });
    c = clients(kube);
  });
  afterEach(() => kube.stop());

  const readDeploy = (name: string) => c.apps.readNamespacedDeployment({ name, namespace: "default" });
  const readJob = (name: string) => c.batch.readNamespacedJob({ name, namespace: "default" });
  const cond = (o: { status?: { conditions?: { type: string; status: string }[] } }, type: string) =>
    o.status?.conditions?.find((x) => x.type === type)?.status;

  it("rolls a Deployment out to Ready pods through a ReplicaSet, and reports Available", async () => {
    await c.apps.createNamespacedDeployment({ namespace: "default", body: deployment("workers", 3) });
    const d = await eventually(async () => {
      const x = await readDeploy("workers");
      return x.status?.readyReplicas === 3 && cond(x, "Available") === "True" ? x : undefined;
    }, "3 ready replicas");
    expect(d.status?.observedGeneration).to.equal(1);
    const rs = (await c.apps.listNamespacedReplicaSet({ namespace: "default" })).items;
    expect(rs).to.have.length(1);
    expect(rs[0]!.metadata?.ownerReferences?.[0]).to.include({
      kind: "Deployment",
      name: "workers",
      controller: true,
    });
    const pods = kube.sim.pods("default", { kind: "ReplicaSet", name: rs[0]!.metadata!.name! });
    expect(pods).to.have.length(3);
    expect(pods.every((p) => p.status.phase === "Running" && p.spec.nodeName === "sim-node-1")).to.equal(
      true,
    );
    expect(pods[0]!.metadata.labels["pod-template-hash"]).to.equal(
      rs[0]!.metadata!.labels!["pod-template-hash"],
    );
  });

  it("scales through the scale subresource and replaces the ReplicaSet on a template change", async () => {
    await c.apps.createNamespacedDeployment({ namespace: "default", body: deployment("w", 2) });
    await eventually(async () => (await readDeploy("w")).status?.readyReplicas === 2, "2 ready");
    await c.apps.patchNamespacedDeploymentScale({
      name: "w",
      namespace: "default",
      body: [{ op: "replace", path: "/spec/replicas", value: 1 }],
    });
    await eventually(async () => (await readDeploy("w")).status?.replicas === 1, "scaled to 1");
    await c.apps.patchNamespacedDeployment({
      name: "w",
      namespace: "default",
      body: [{ op: "replace", path: "/spec/template/spec/containers/0/image", value: "busybox:1.37" }],
    });
    await eventually(async () => {
      const pods = kube.sim.pods().filter((p) => !p.metadata.deletionTimestamp);
      return (
        pods.length === 1 &&
        pods[0]!.spec.containers[0].image === "busybox:1.37" &&
        pods[0]!.status.phase === "Running"
      );
    }, "new template rolled out");
    const rs = (await c.apps.listNamespacedReplicaSet({ namespace: "default" })).items;
    expect(rs.map((r) => r.spec?.replicas).sort()).to.deep.equal([0, 1]);
    const d = await readDeploy("w");
    expect(d.metadata?.generation).to.equal(3);
  });

  it("replaces a pod that fails under a Deployment, and turns a pod unready on command", async () => {
    await c.apps.createNamespacedDeployment({ namespace: "default", body: deployment("w", 1) });
    const first = await eventually(() => kube.sim.readyPods()[0], "a ready pod");
    kube.sim.setPodReady(first.metadata.name, false);
    await eventually(async () => (await readDeploy("w")).status?.readyReplicas === 0, "unready counted");
    kube.sim.failPod(first.metadata.name, 137);
    await eventually(
      () => kube.sim.readyPods().some((p) => p.metadata.name !== first.metadata.name),
      "replacement ready",
    );
  });

  it("runs a Job's pods until completeJob, then sets Complete with completionTime", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: job("train", { completions: 2, parallelism: 2 }),
    });
    await eventually(async () => (await readJob("train")).status?.active === 2, "2 active pods");
    expect((await readJob("train")).status?.ready).to.equal(2);
    kube.sim.completeJob("train");
    const done = await eventually(async () => {
      const j = await readJob("train");
      return cond(j, "Complete") === "True" ? j : undefined;
    }, "job complete");
    expect(done.status?.succeeded).to.equal(2);
    expect(done.status?.completionTime).to.be.instanceOf(Date);
    expect(done.status?.active).to.equal(undefined);
  });

  it("counts pod failures against backoffLimit and sets Failed (BackoffLimitExceeded)", async () => {
    await c.batch.createNamespacedJob({ namespace: "default", body: job("bad", { backoffLimit: 1 }) });
    const p1 = await eventually(() => kube.sim.activeJobPods("bad")[0], "first pod");
    kube.sim.failPod(p1.metadata.name, 1);
    const p2 = await eventually(
      () => kube.sim.activeJobPods("bad").find((p) => p.metadata.name !== p1.metadata.name),
      "retry pod",
    );
    expect((await readJob("bad")).status?.failed).to.equal(1);
    kube.sim.failPod(p2.metadata.name, 2);
    const failed = await eventually(async () => {
      const j = await readJob("bad");
      return cond(j, "Failed") === "True" ? j : undefined;
    }, "job failed");
    expect(failed.status?.conditions?.find((x) => x.type === "Failed")?.reason).to.equal(
      "BackoffLimitExceeded",
    );
    expect(failed.status?.failed).to.equal(2);
  });

  it("failJob fails every pod until the backoff limit; jobPods 'succeed' completes Jobs by themselves", async () => {
    await c.batch.createNamespacedJob({ namespace: "default", body: job("f", { backoffLimit: 2 }) });
    kube.sim.failJob("f", 3);
    const failed = await eventually(async () => {
      const j = await readJob("f");
      return cond(j, "Failed") === "True" ? j : undefined;
    }, "job failed");
    expect(failed.status?.failed).to.equal(3);
    await kube.stop();
    kube = await startKubeServer({ crdDir: "crds", sim: { jobPods: "succeed" } });
    c = clients(kube);
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: job("auto", { completions: 2, parallelism: 1 }),
    });
    const done = await eventually(async () => {
      const j = await readJob("auto");
      return cond(j, "Complete") === "True" ? j : undefined;
    }, "job complete");
    expect(done.status?.succeeded).to.equal(2);
  });

  it("runs Indexed Jobs with one pod per index, hostnames and completedIndexes", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: job("idx", { completionMode: "Indexed", completions: 3, parallelism: 2 }),
    });
    const pods = await eventually(
      () => (kube.sim.activeJobPods("idx").length === 2 ? kube.sim.activeJobPods("idx") : undefined),
      "2 pods",
    );
    const indexes = pods
      .map((p) => p.metadata.annotations["batch.kubernetes.io/job-completion-index"])
      .sort();
    expect(indexes).to.deep.equal(["0", "1"]);
    expect(pods.map((p) => p.spec.hostname).sort()).to.deep.equal(["idx-0", "idx-1"]);
    kube.sim.succeedPod(pods.find((p) => p.spec.hostname === "idx-1")!.metadata.name);
    await eventually(
      () => kube.sim.activeJobPods("idx").some((p) => p.spec.hostname === "idx-2"),
      "index 2 started",
    );
    expect((await readJob("idx")).status?.completedIndexes).to.equal("1");
    kube.sim.completeJob("idx");
    await eventually(async () => cond(await readJob("idx"), "Complete") === "True", "indexed job complete");
    expect((await readJob("idx")).status?.completedIndexes).to.equal("0-2");
  });

  it("suspending a Job deletes its pods without counting failures; resuming starts them again", async () => {
    await c.batch.createNamespacedJob({ namespace: "default", body: job("s", { backoffLimit: 0 }) });
    await eventually(() => kube.sim.activeJobPods("s").length === 1, "pod");
    await c.batch.patchNamespacedJob({
      name: "s",
      namespace: "default",
      body: [{ op: "replace", path: "/spec/suspend", value: true }],
    });
    const suspended = await eventually(async () => {
      const j = await readJob("s");
      return cond(j, "Suspended") === "True" && kube.sim.pods().length === 0 ? j : undefined;
    }, "suspended");
    expect(suspended.status?.startTime).to.equal(undefined);
    await c.batch.patchNamespacedJob({
      name: "s",
      namespace: "default",
      body: [{ op: "replace", path: "/spec/suspend", value: false }],
    });
    await eventually(() => kube.sim.activeJobPods("s").length === 1, "pod again");
    const resumed = await eventually(async () => {
      const j = await readJob("s");
      return cond(j, "Suspended") === "False" ? j : undefined;
    }, "resumed");
    expect(resumed.status?.failed).to.equal(undefined);
    expect(cond(resumed, "Failed")).to.equal(undefined);
  });

  it("deleting a Job with propagationPolicy Background removes its pods", async () => {
    await c.batch.createNamespacedJob({ namespace: "default", body: job("j") });
    await eventually(() => kube.sim.activeJobPods("j").length === 1, "pod");
    await c.batch.deleteNamespacedJob({ name: "j", namespace: "default", propagationPolicy: "Background" });
    await eventually(() => kube.sim.pods().length === 0, "pods collected");
  });

  it("terminates a running pod gracefully: deletionTimestamp first, gone once the kubelet confirms", async () => {
    await c.core.createNamespacedPod({
      namespace: "default",
      body: { metadata: { name: "p" }, spec: { containers: [{ name: "c", image: "i" }] } },
    });
    await eventually(() => kube.get("v1", "Pod", "default", "p")?.status.phase === "Running", "running");
    const del = await c.core.deleteNamespacedPod({ name: "p", namespace: "default" });
    expect(del.metadata?.deletionTimestamp).to.be.instanceOf(Date);
    expect(del.metadata?.deletionGracePeriodSeconds).to.equal(30);
    await eventually(() => kube.get("v1", "Pod", "default", "p") === undefined, "pod gone");
    await c.core.createNamespacedPod({
      namespace: "default",
      body: { metadata: { name: "q" }, spec: { containers: [{ name: "c", image: "i" }] } },
    });
    await eventually(() => kube.get("v1", "Pod", "default", "q")?.status.phase === "Running", "running");
    const now = await c.core.deleteNamespacedPod({ name: "q", namespace: "default", gracePeriodSeconds: 0 });
    expect(now.metadata?.deletionGracePeriodSeconds ?? 0).to.equal(0);
    expect(kube.get("v1", "Pod", "default", "q")).to.equal(undefined);
  });

  it("leaves pods Pending in manual kubelet mode until startPod", async () => {
    await kube.stop();
    kube = await startKubeServer({ crdDir: "crds", sim: { kubelet: "manual" } });
    c = clients(kube);
    await c.core.createNamespacedPod({
      namespace: "default",
      body: { metadata: { name: "p" }, spec: { containers: [{ name: "c", image: "i" }] } },
    });
    await kube.settled();
    expect(kube.get("v1", "Pod", "default", "p")!.status.phase).to.equal("Pending");
    kube.sim.startPod("p", "default", false);
    const p = await c.core.readNamespacedPod({ name: "p", namespace: "default" });
    expect(p.status?.phase).to.equal("Running");
    expect(p.status?.conditions?.find((x) => x.type === "Ready")?.status).to.equal("False");
  });
});
