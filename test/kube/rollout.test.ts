// Deployment rollouts: the replica arithmetic as a table (surge/unavailable rounding, unhealthy
// old pods first, Recreate), and a paced rollout through the simulation with a manual kubelet.
import { expect } from "chai";
import { rolloutStep, type RsState } from "./sim-rollout.js";
import { startKubeServer, type KubeServer } from "./server.js";
import { clients, type Clients, deployment, eventually } from "./testkit.js";

const rs = (uid: string, replicas: number, available = replicas, pods = replicas): RsState => ({
  uid,
  replicas,
  available,
  pods,
});

describe("kube server: rollout arithmetic (pure)", () => {
  const table: [string, Parameters<typeof rolloutStep>[0], RsState, RsState[], Record<string, number>][] = [
    ["no old ReplicaSet: scale straight to desired", { replicas: 3 }, rs("new", 1), [], { new: 3 }],
    [
      "4 replicas, 25%/25%: surge 1, keep 3 available",
      { replicas: 4 },
      rs("new", 0),
      [rs("old", 4)],
      { new: 1, old: 3 },
    ],
    [
      "new pod not ready: surge to desired+1 pods, no old pod goes",
      { replicas: 4 },
      rs("new", 1, 0),
      [rs("old", 3)],
      { new: 2, old: 3 },
    ],
    [
      "new pod ready: one more old pod goes",
      { replicas: 4 },
      rs("new", 1, 1),
      [rs("old", 3)],
      { new: 2, old: 2 },
    ],
    [
      "1 replica: maxUnavailable rounds to 0, surge to 1",
      { replicas: 1 },
      rs("new", 0),
      [rs("old", 1)],
      { new: 1, old: 1 },
    ],
    ["unhealthy old pods go first", { replicas: 2 }, rs("new", 1, 0), [rs("old", 2, 0)], { new: 1, old: 0 }],
    [
      "maxSurge 0 and maxUnavailable 0 means maxUnavailable 1",
      { replicas: 2, strategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } } },
      rs("new", 0),
      [rs("old", 2)],
      { new: 0, old: 1 },
    ],
    [
      "Recreate: old to zero first",
      { replicas: 2, strategy: { type: "Recreate" } },
      rs("new", 0),
      [rs("old", 2)],
      { new: 0, old: 0 },
    ],
    [
      "Recreate: new grows once old pods are gone",
      { replicas: 2, strategy: { type: "Recreate" } },
      rs("new", 0),
      [rs("old", 0, 0, 0)],
      { new: 2, old: 0 },
    ],
  ];
  for (const [name, spec, cur, olds, want] of table)
    it(name, () => expect(Object.fromEntries(rolloutStep(spec, cur, olds))).to.deep.equal(want));
});

describe("kube server: paced rollout", () => {
  let kube: KubeServer;
  let c: Clients;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", sim: { kubelet: "manual" } });
    c = clients(kube);
  });
  afterEach(() => kube.stop());

  const startPending = async (): Promise<void> => {
    for (const p of kube.sim.pods())
      if (p.status.phase === "Pending" && !p.metadata.deletionTimestamp) kube.sim.startPod(p.metadata.name);
    await kube.settled();
  };

  it("keeps old pods serving until new ones are ready", async () => {
    await c.apps.createNamespacedDeployment({ namespace: "default", body: deployment("w", 4) });
    await eventually(() => kube.sim.pods().length === 4, "4 pods");
    await startPending();
    await c.apps.patchNamespacedDeployment({
      name: "w",
      namespace: "default",
      body: [{ op: "replace", path: "/spec/template/spec/containers/0/image", value: "busybox:2" }],
    });
    await kube.settled();
    const images = (): string[] =>
      kube.sim
        .pods()
        .filter((p) => !p.metadata.deletionTimestamp)
        .map((p) => p.spec.containers[0].image);
    // desired + maxSurge = 5 pods; three old ones (desired - maxUnavailable) serve while new ones start.
    expect(images().sort()).to.deep.equal([
      "busybox:1.36",
      "busybox:1.36",
      "busybox:1.36",
      "busybox:2",
      "busybox:2",
    ]);
    for (let i = 0; i < 10 && images().some((x) => x !== "busybox:2"); i++) await startPending();
    expect(images()).to.deep.equal(["busybox:2", "busybox:2", "busybox:2", "busybox:2"]);
    const d = await eventually(async () => {
      const x = await c.apps.readNamespacedDeployment({ name: "w", namespace: "default" });
      return x.status?.updatedReplicas === 4 && x.status.availableReplicas === 4 ? x : undefined;
    }, "rollout complete");
    expect(d.status?.conditions?.find((x) => x.type === "Progressing")?.reason).to.equal(
      "NewReplicaSetAvailable",
    );
  });
});
