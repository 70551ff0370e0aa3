// Deletion: finalizers hold an object (deletionTimestamp set) until the last one goes; owner
// references drive background, foreground and orphan garbage collection; namespaces terminate.
import { expect } from "chai";
import { startKubeServer, type KubeServer } from "./server.js";
import { apiError, clients, type Clients, eventually, mergePatch, TR, trainingRun } from "./testkit.js";

describe("kube server: finalizers and garbage collection", () => {
  let kube: KubeServer;
  let c: Clients;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", sim: false, namespaces: ["team"] });
    c = clients(kube);
  });
  afterEach(() => kube.stop());

  const ownedCm = (name: string, owner: any, extra: object = {}) =>
    c.core.createNamespacedConfigMap({
      namespace: "default",
      body: {
        metadata: {
          name,
          ownerReferences: [
            {
              apiVersion: owner.apiVersion,
              kind: owner.kind,
              name: owner.metadata.name,
              uid: owner.metadata.uid,
              controller: true,
              ...extra,
            },
          ],
        },
      },
    });
  const exists = async (name: string): Promise<boolean> =>
    kube.get("v1", "ConfigMap", "default", name) !== undefined;

  it("marks an object with finalizers and removes it when the last finalizer is removed", async () => {
    await c.custom.createNamespacedCustomObject({
      ...TR,
      namespace: "default",
      body: { ...trainingRun("r"), metadata: { name: "r", finalizers: ["l0.dev/cleanup"] } },
    });
    const del = await c.custom.deleteNamespacedCustomObject({ ...TR, namespace: "default", name: "r" });
    expect(del.metadata.deletionTimestamp).to.be.a("string");
    const held = await c.custom.getNamespacedCustomObject({ ...TR, namespace: "default", name: "r" });
    expect(held.metadata.deletionTimestamp).to.equal(del.metadata.deletionTimestamp);
    await c.custom.patchNamespacedCustomObject(
      { ...TR, namespace: "default", name: "r", body: { metadata: { finalizers: null } } },
      mergePatch,
    );
    expect(
      (await apiError(() => c.custom.getNamespacedCustomObject({ ...TR, namespace: "default", name: "r" })))
        .code,
    ).to.equal(404);
  });

  it("deletes dependents in the background once their only owner is gone", async () => {
    const owner = await c.custom.createNamespacedCustomObject({
      ...TR,
      namespace: "default",
      body: trainingRun("r"),
    });
    await ownedCm("r-config", owner);
    const other = await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "keep" } },
    });
    await c.custom.deleteNamespacedCustomObject({ ...TR, namespace: "default", name: "r" });
    await eventually(async () => !(await exists("r-config")), "dependent collected");
    expect(other.metadata?.name && (await exists("keep"))).to.equal(true);
  });

  it("keeps a dependent that still has a live owner, dropping the dangling reference", async () => {
    const a = await c.custom.createNamespacedCustomObject({
      ...TR,
      namespace: "default",
      body: trainingRun("a"),
    });
    const b = await c.custom.createNamespacedCustomObject({
      ...TR,
      namespace: "default",
      body: trainingRun("b"),
    });
    await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: {
        metadata: {
          name: "shared",
          ownerReferences: [a, b].map((o: any) => ({
            apiVersion: o.apiVersion,
            kind: o.kind,
            name: o.metadata.name,
            uid: o.metadata.uid,
          })),
        },
      },
    });
    await c.custom.deleteNamespacedCustomObject({ ...TR, namespace: "default", name: "a" });
    await eventually(
      () => kube.get("v1", "ConfigMap", "default", "shared")?.metadata.ownerReferences.length === 1,
      "dangling ref dropped",
    );
    expect(kube.get("v1", "ConfigMap", "default", "shared")!.metadata.ownerReferences[0].name).to.equal("b");
  });

  it("foreground deletion keeps the owner until blocking dependents are gone", async () => {
    const owner = await c.custom.createNamespacedCustomObject({
      ...TR,
      namespace: "default",
      body: trainingRun("r"),
    });
    await ownedCm("dep", owner, { blockOwnerDeletion: true });
    await c.core.patchNamespacedConfigMap(
      { name: "dep", namespace: "default", body: { metadata: { finalizers: ["l0.dev/hold"] } } },
      mergePatch,
    );
    const del = await c.custom.deleteNamespacedCustomObject({
      ...TR,
      namespace: "default",
      name: "r",
      propagationPolicy: "Foreground",
    });
    expect(del.metadata.finalizers).to.include("foregroundDeletion");
    await eventually(
      () => kube.get("v1", "ConfigMap", "default", "dep")?.metadata.deletionTimestamp,
      "dependent marked",
    );
    await kube.settled();
    expect(kube.get("l0.dev/v1alpha1", "TrainingRun", "default", "r")).to.not.equal(undefined);
    await c.core.patchNamespacedConfigMap(
      { name: "dep", namespace: "default", body: { metadata: { finalizers: null } } },
      mergePatch,
    );
    await eventually(
      () => kube.get("l0.dev/v1alpha1", "TrainingRun", "default", "r") === undefined,
      "owner gone",
    );
  });

  it("orphan deletion strips owner references and leaves dependents; batch/v1 Jobs orphan by default", async () => {
    const owner = await c.custom.createNamespacedCustomObject({
      ...TR,
      namespace: "default",
      body: trainingRun("r"),
    });
    await ownedCm("dep", owner);
    await c.custom.deleteNamespacedCustomObject({
      ...TR,
      namespace: "default",
      name: "r",
      propagationPolicy: "Orphan",
    });
    await eventually(
      () => kube.get("l0.dev/v1alpha1", "TrainingRun", "default", "r") === undefined,
      "owner gone",
    );
    await kube.settled();
    expect(kube.get("v1", "ConfigMap", "default", "dep")?.metadata.ownerReferences).to.equal(undefined);
    const job = await c.batch.createNamespacedJob({
      namespace: "default",
      body: {
        metadata: { name: "j" },
        spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "c", image: "i" }] } } },
      },
    });
    await ownedCm("job-dep", { apiVersion: "batch/v1", kind: "Job", metadata: job.metadata });
    await c.batch.deleteNamespacedJob({ name: "j", namespace: "default" });
    await eventually(() => kube.get("batch/v1", "Job", "default", "j") === undefined, "job gone");
    await kube.settled();
    expect(await exists("job-dep")).to.equal(true);
  });

  it("a deleted namespace turns Terminating, refuses new content, and goes when it is empty", async () => {
    await c.core.createNamespacedConfigMap({
      namespace: "team",
      body: { metadata: { name: "x", finalizers: ["l0.dev/hold"] } },
    });
    await c.core.deleteNamespace({ name: "team" });
    const ns = await c.core.readNamespace({ name: "team" });
    expect(ns.status?.phase).to.equal("Terminating");
    const refused = await apiError(() =>
      c.core.createNamespacedConfigMap({ namespace: "team", body: { metadata: { name: "y" } } }),
    );
    expect(refused.code).to.equal(403);
    await eventually(
      () => kube.get("v1", "ConfigMap", "team", "x")?.metadata.deletionTimestamp,
      "content marked",
    );
    await c.core.patchNamespacedConfigMap(
      { name: "x", namespace: "team", body: { metadata: { finalizers: null } } },
      mergePatch,
    );
    await eventually(() => kube.get("v1", "Namespace", "", "team") === undefined, "namespace gone");
  });

  it("checks delete preconditions (uid, resourceVersion) with 409", async () => {
    const cm = await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "a" } },
    });
    const e = await apiError(() =>
      c.core.deleteNamespacedConfigMap({
        name: "a",
        namespace: "default",
        body: { preconditions: { uid: "not-it" } },
      }),
    );
    expect(e.code).to.equal(409);
    const ok = await c.core.deleteNamespacedConfigMap({
      name: "a",
      namespace: "default",
      body: { preconditions: { uid: cm.metadata!.uid!, resourceVersion: cm.metadata!.resourceVersion! } },
    });
    expect(ok).to.include({ status: "Success" });
  });
});
