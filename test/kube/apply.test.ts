// Server-side apply with managed fields: create-on-apply, fields an applier stops sending are
// removed, conflicts with other managers (409 with causes) unless force, shared ownership of
// equal values, and managedFields recorded for ordinary writes too.
import { expect } from "chai";
import * as k8s from "@kubernetes/client-node";
import { fieldSet, fromFieldsV1, toFieldsV1 } from "./managed.js";
import { ResourceTable } from "./resources.js";
import { startKubeServer, type KubeServer } from "./server.js";
import { apiError, clients, type Clients, mergePatch, TR, trainingRun } from "./testkit.js";

const ssa = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.ServerSideApply);

describe("kube server: managed fields (pure)", () => {
  const deploy = new ResourceTable([]).byPath("apps", "v1", "deployments")!;
  it("tracks associative lists by merge key and round-trips FieldsV1", () => {
    const set = fieldSet(deploy, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "x", labels: { a: "b" } },
      spec: { replicas: 2, template: { spec: { containers: [{ name: "c", image: "i", args: ["1"] }] } } },
    });
    const paths = [...set].map((p) => JSON.parse(p).join("/"));
    expect(paths).to.include.members([
      "f:metadata/f:labels/f:a",
      "f:spec/f:replicas",
      'f:spec/f:template/f:spec/f:containers/k:{"name":"c"}',
      'f:spec/f:template/f:spec/f:containers/k:{"name":"c"}/f:image',
      'f:spec/f:template/f:spec/f:containers/k:{"name":"c"}/f:args',
    ]);
    expect(paths).to.not.include("f:metadata/f:name");
    const v1 = toFieldsV1(set);
    expect(v1["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']["."]).to.deep.equal({});
    expect(fromFieldsV1(v1)).to.deep.equal(set);
  });
});

describe("kube server: server-side apply", () => {
  let kube: KubeServer;
  let c: Clients;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", sim: false });
    c = clients(kube);
  });
  afterEach(() => kube.stop());

  const cm = (data: Record<string, string>, labels: Record<string, string> = {}) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "cfg", ...(Object.keys(labels).length > 0 ? { labels } : {}) },
    data,
  });
  const apply = (body: object, fieldManager: string, force?: boolean) =>
    c.core.patchNamespacedConfigMap(
      { name: "cfg", namespace: "default", body, fieldManager, ...(force ? { force } : {}) },
      ssa,
    );

  it("creates on first apply and records the manager with operation Apply", async () => {
    const o = await apply(cm({ a: "1" }), "l0-operator");
    expect(o.data).to.deep.equal({ a: "1" });
    const mf = o.metadata?.managedFields ?? [];
    expect(mf.map((m) => [m.manager, m.operation])).to.deep.equal([["l0-operator", "Apply"]]);
    expect(mf[0]!.fieldsV1).to.deep.equal({ "f:data": { "f:a": {} } });
  });

  it("removes fields the applier stopped applying, but keeps fields another manager owns", async () => {
    await apply(cm({ a: "1", b: "2" }, { team: "x" }), "l0-operator");
    await c.core.patchNamespacedConfigMap(
      { name: "cfg", namespace: "default", body: { data: { mine: "y" } }, fieldManager: "human" },
      mergePatch,
    );
    const o = await apply(cm({ a: "1" }), "l0-operator");
    expect(o.data).to.deep.equal({ a: "1", mine: "y" });
    expect(o.metadata?.labels ?? {}).to.deep.equal({});
    const owners = Object.fromEntries((o.metadata?.managedFields ?? []).map((m) => [m.manager, m.fieldsV1]));
    expect(owners.human).to.deep.equal({ "f:data": { "f:mine": {} } });
  });

  it("reports a conflict when another manager changed a field the applier sets, and force takes it over", async () => {
    await apply(cm({ a: "1" }), "l0-operator");
    await c.core.patchNamespacedConfigMap(
      { name: "cfg", namespace: "default", body: { data: { a: "2" } }, fieldManager: "kubectl-edit" },
      mergePatch,
    );
    const e = await apiError(() => apply(cm({ a: "1" }), "l0-operator"));
    expect(e.code).to.equal(409);
    expect(e.body.reason).to.equal("Conflict");
    expect(e.body.details.causes).to.deep.equal([
      { reason: "FieldManagerConflict", message: 'conflict with "kubectl-edit" using v1', field: ".data.a" },
    ]);
    expect(e.body.message).to.equal(
      'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.a',
    );
    const forced = await apply(cm({ a: "1" }), "l0-operator", true);
    expect(forced.data).to.deep.equal({ a: "1" });
    expect(forced.metadata?.managedFields?.map((m) => m.manager)).to.deep.equal(["l0-operator"]);
  });

  it("shares ownership when two appliers set the same value, with no conflict", async () => {
    await apply(cm({ a: "1" }), "one");
    const o = await apply(cm({ a: "1" }), "two");
    expect(o.metadata?.managedFields?.map((m) => m.manager).sort()).to.deep.equal(["one", "two"]);
    const e = await apiError(() => apply(cm({ a: "3" }), "two"));
    expect(e.body.details.causes[0].message).to.equal('conflict with "one"');
  });

  it("merges containers by name when applying a Deployment, and reads its own changes as no-ops", async () => {
    const body = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "w" },
      spec: {
        selector: { matchLabels: { app: "w" } },
        template: {
          metadata: { labels: { app: "w" } },
          spec: { containers: [{ name: "main", image: "i:1" }] },
        },
      },
    };
    const first = await c.apps.patchNamespacedDeployment(
      { name: "w", namespace: "default", body, fieldManager: "op" },
      ssa,
    );
    await c.apps.patchNamespacedDeployment(
      {
        name: "w",
        namespace: "default",
        body: { spec: { template: { spec: { containers: [{ name: "sidecar", image: "s:1" }] } } } },
        fieldManager: "injector",
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
    );
    const again = await c.apps.patchNamespacedDeployment(
      { name: "w", namespace: "default", body, fieldManager: "op" },
      ssa,
    );
    expect(again.spec?.template.spec?.containers.map((x) => x.name)).to.deep.equal(["main", "sidecar"]);
    expect(again.metadata?.generation).to.equal(2);
    const third = await c.apps.patchNamespacedDeployment(
      { name: "w", namespace: "default", body, fieldManager: "op" },
      ssa,
    );
    expect(third.metadata?.resourceVersion).to.equal(again.metadata?.resourceVersion);
    expect(first.metadata?.generation).to.equal(1);
  });

  it("applies custom resources (atomic lists, schema defaults) through KubernetesObjectApi", async () => {
    const body = { ...trainingRun("r"), spec: { ...trainingRun("r").spec, dataset: { path: "/a" } } };
    const o = await c.objects.patch(
      body as k8s.KubernetesObject,
      undefined,
      undefined,
      "l0-operator",
      undefined,
      k8s.PatchStrategy.ServerSideApply,
    );
    expect((o as any).spec.dataset.questionField).to.equal("question");
    const cur = await c.custom.getNamespacedCustomObject({ ...TR, namespace: "default", name: "r" });
    expect(cur.metadata.managedFields[0].manager).to.equal("l0-operator");
  });

  it("applies to the status subresource without touching spec", async () => {
    await c.custom.createNamespacedCustomObject({ ...TR, namespace: "default", body: trainingRun("r") });
    const st = await c.custom.patchNamespacedCustomObjectStatus(
      {
        ...TR,
        namespace: "default",
        name: "r",
        body: {
          apiVersion: "l0.dev/v1alpha1",
          kind: "TrainingRun",
          metadata: { name: "r" },
          status: { phase: "Running" },
        },
        fieldManager: "l0-status",
      },
      ssa,
    );
    expect(st.status.phase).to.equal("Running");
    expect(st.spec.model.name).to.equal("tiny");
    const entry = st.metadata.managedFields.find((m: any) => m.manager === "l0-status");
    expect(entry).to.include({ operation: "Apply", subresource: "status" });
  });

  it("requires a fieldManager for apply (422) and refuses force on other patch types (422)", async () => {
    const e = await apiError(() =>
      c.core.patchNamespacedConfigMap({ name: "cfg", namespace: "default", body: cm({}) }, ssa),
    );
    expect(e.code).to.equal(422);
    expect(e.body.message).to.contain("fieldManager: Required value");
    await apply(cm({ a: "1" }), "x");
    const f = await apiError(() =>
      c.core.patchNamespacedConfigMap(
        { name: "cfg", namespace: "default", body: {}, force: true },
        mergePatch,
      ),
    );
    expect(f.code).to.equal(422);
  });

  it("records managedFields (operation Update) for creates, updates and patches", async () => {
    const o = await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "u" }, data: { a: "1" } },
      fieldManager: "creator",
    });
    expect(o.metadata?.managedFields?.[0]).to.include({ manager: "creator", operation: "Update" });
    const p = await c.core.patchNamespacedConfigMap(
      { name: "u", namespace: "default", body: { data: { a: "2" } }, fieldManager: "editor" },
      mergePatch,
    );
    const owners = Object.fromEntries((p.metadata?.managedFields ?? []).map((m) => [m.manager, m.fieldsV1]));
    expect(owners).to.deep.equal({ editor: { "f:data": { "f:a": {} } } });
  });
});
