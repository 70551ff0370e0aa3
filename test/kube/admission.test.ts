// Pod admission and scheduling where a real cluster applies them: a pod naming a missing
// RuntimeClass, a pod breaking its namespace's Pod Security level, a pod no node can hold. The
// workload controllers surface refusals as FailedCreate events and ReplicaFailure conditions.
import { expect } from "chai";
import * as k8s from "@kubernetes/client-node";
import { startKubeServer, type KubeServer } from "./server.js";
import { apiError, clients, type Clients, deployment, eventually, job } from "./testkit.js";

describe("kube server: pod admission and scheduling", () => {
  let kube: KubeServer;
  let c: Clients;
  beforeEach(async () => {
    kube = await startKubeServer({ namespaces: ["base", "strict"] });
    c = clients(kube);
    for (const [ns, level] of [
      ["base", "baseline"],
      ["strict", "restricted"],
    ])
      await c.core.patchNamespace(
        { name: ns!, body: { metadata: { labels: { "pod-security.kubernetes.io/enforce": level! } } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
  });
  afterEach(() => kube.stop());

  const pod = (name: string, spec: Partial<k8s.V1PodSpec> = {}): k8s.V1Pod => ({
    metadata: { name },
    spec: { containers: [{ name: "main", image: "busybox:1.36" }], ...spec },
  });
  const warnings = (ns: string, name: string) =>
    kube
      .list("v1", "Event", ns)
      .filter((e) => e.involvedObject.name === name && e.reason === "FailedCreate")
      .map((e) => e.message as string);

  it("refuses a pod naming a missing RuntimeClass with 403, and admits it once the class exists", async () => {
    const e = await apiError(() =>
      c.core.createNamespacedPod({ namespace: "default", body: pod("p", { runtimeClassName: "gvisor" }) }),
    );
    expect(e.code).to.equal(403);
    expect(e.body).to.include({
      reason: "Forbidden",
      message: 'pods "p" is forbidden: pod rejected: RuntimeClass "gvisor" not found',
    });
    await c.kc.makeApiClient(k8s.NodeV1Api).createRuntimeClass({
      body: { metadata: { name: "gvisor" }, handler: "runsc", overhead: { podFixed: { memory: "64Mi" } } },
    });
    const ok = await c.core.createNamespacedPod({
      namespace: "default",
      body: pod("p", { runtimeClassName: "gvisor" }),
    });
    expect(ok.spec?.overhead).to.deep.equal({ memory: "64Mi" });
  });

  it("a Deployment whose pods are refused reports FailedCreate and ReplicaFailure, and recovers", async () => {
    const d = deployment("w", 2);
    d.spec!.template.spec!.runtimeClassName = "gvisor";
    await c.apps.createNamespacedDeployment({ namespace: "default", body: d });
    const failed = await eventually(async () => {
      const x = await c.apps.readNamespacedDeployment({ name: "w", namespace: "default" });
      return x.status?.conditions?.find((k) => k.type === "ReplicaFailure");
    }, "Deployment ReplicaFailure");
    expect(failed).to.include({ status: "True", reason: "FailedCreate" });
    expect(failed.message).to.match(
      /^pods "w-[a-z0-9]+-" is forbidden: pod rejected: RuntimeClass "gvisor" not found$/,
    );
    const rs = kube.list("apps/v1", "ReplicaSet", "default")[0]!;
    expect(rs.status.conditions.find((k: { type: string }) => k.type === "ReplicaFailure").reason).to.equal(
      "FailedCreate",
    );
    // One event per distinct error, however often the controller retries.
    await kube.settled();
    expect(warnings("default", rs.metadata.name)).to.deep.equal([`Error creating: ${failed.message}`]);
    await c.kc
      .makeApiClient(k8s.NodeV1Api)
      .createRuntimeClass({ body: { metadata: { name: "gvisor" }, handler: "runsc" } });
    await eventually(async () => {
      const x = await c.apps.readNamespacedDeployment({ name: "w", namespace: "default" });
      return x.status?.readyReplicas === 2 && !x.status.conditions?.some((k) => k.type === "ReplicaFailure");
    }, "pods created, ReplicaFailure gone");
  });

  it("enforces the namespace's Pod Security level on pods, naming every violation", async () => {
    const unconfined = pod("w", {
      securityContext: { seccompProfile: { type: "Unconfined" } },
      containers: [
        {
          name: "worker",
          image: "w:1",
          securityContext: {
            appArmorProfile: { type: "Unconfined" },
            seccompProfile: { type: "Unconfined" },
          },
        },
      ],
    });
    const e = await apiError(() => c.core.createNamespacedPod({ namespace: "base", body: unconfined }));
    expect(e.code).to.equal(403);
    expect(e.body.message).to.equal(
      'pods "w" is forbidden: violates PodSecurity "baseline:latest": ' +
        'forbidden AppArmor profile (container "worker" must not set securityContext.appArmorProfile.type to "Unconfined"), ' +
        'seccompProfile (pod and container "worker" must not set securityContext.seccompProfile.type to "Unconfined")',
    );
    await c.core.createNamespacedPod({ namespace: "default", body: unconfined }); // no label: privileged
    await c.core.createNamespacedPod({ namespace: "base", body: pod("plain") });
    const r = await apiError(() => c.core.createNamespacedPod({ namespace: "strict", body: pod("plain") }));
    expect(r.body.message).to.contain(
      'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false',
    );
    expect(r.body.message).to.contain("runAsNonRoot != true");
    await c.core.createNamespacedPod({
      namespace: "strict",
      body: pod("ok", {
        securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
        containers: [
          {
            name: "main",
            image: "i:1",
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
          },
        ],
        volumes: [{ name: "tmp", emptyDir: {} }],
      }),
    });
  });

  it("an unmasked /proc only in a user-namespaced pod, which baseline then allows (v1.35+)", async () => {
    const unmasked = (hostUsers?: boolean, extra: Record<string, unknown> = {}) =>
      pod("u", {
        ...(hostUsers === undefined ? {} : { hostUsers }),
        ...extra,
        containers: [{ name: "worker", image: "w:1", securityContext: { procMount: "Unmasked" } }],
      });
    const host = await apiError(() => c.core.createNamespacedPod({ namespace: "default", body: unmasked() }));
    expect(host.code).to.equal(422);
    expect(host.body.message).to.contain(
      'spec.containers[0].securityContext.procMount: Invalid value: "Unmasked": `hostUsers` must be false to use `Unmasked`',
    );
    const shared = await apiError(() =>
      c.core.createNamespacedPod({ namespace: "default", body: unmasked(false, { hostPID: true }) }),
    );
    expect(shared.body.message).to.contain("spec.hostPID: Forbidden: when `hostUsers` is false");
    const odd = pod("o", {
      containers: [{ name: "m", image: "m:1", securityContext: { procMount: "Open" } }],
    });
    const bad = await apiError(() => c.core.createNamespacedPod({ namespace: "default", body: odd }));
    expect(bad.body.message).to.contain('Unsupported value: "Open"');
    await c.core.createNamespacedPod({ namespace: "base", body: unmasked(false) });
  });

  it("a Job whose pods break Pod Security gets a FailedCreate event and no pods", async () => {
    await c.batch.createNamespacedJob({ namespace: "strict", body: job("t") });
    const [msg] = await eventually(() => {
      const w = warnings("strict", "t");
      return w.length > 0 ? w : undefined;
    }, "event");
    expect(msg).to.match(/^Error creating: pods "t-" is forbidden: violates PodSecurity "restricted:latest"/);
    expect(kube.sim.pods("strict")).to.have.length(0);
  });

  it("leaves a pod no node can hold Pending and Unschedulable, with the scheduler's reason", async () => {
    const big = pod("gpu", {
      containers: [{ name: "t", image: "t:1", resources: { limits: { "nvidia.com/gpu": "16" } } }],
    });
    await c.core.createNamespacedPod({ namespace: "default", body: big });
    const cond = await eventually(
      () =>
        kube
          .get("v1", "Pod", "default", "gpu")
          ?.status?.conditions?.find((k: { type: string }) => k.type === "PodScheduled"),
      "PodScheduled condition",
    );
    expect(cond).to.include({
      status: "False",
      reason: "Unschedulable",
      message: "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
    });
    const p = kube.get("v1", "Pod", "default", "gpu")!;
    expect(p.spec.nodeName).to.equal(undefined);
    expect(p.status.phase).to.equal("Pending");
    await c.core.createNamespacedPod({
      namespace: "default",
      body: pod("sel", { nodeSelector: { gpu: "h100" } }),
    });
    await eventually(
      () =>
        kube.get("v1", "Pod", "default", "sel")?.status?.conditions?.[0]?.message ===
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
      "selector mismatch",
    );
    const fits = pod("fits", {
      containers: [{ name: "t", image: "t:1", resources: { limits: { "nvidia.com/gpu": "8" } } }],
    });
    await c.core.createNamespacedPod({ namespace: "default", body: fits });
    await eventually(
      () => kube.get("v1", "Pod", "default", "fits")?.status?.phase === "Running",
      "8 GPUs fit",
    );
  });
});
