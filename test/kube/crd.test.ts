// Custom resources served from crds/: schema validation with 422 causes, pruning, defaults,
// the status and scale subresources, generation bumps only on spec changes; CRD admission
// (defaults checked against their rules) and CEL rules on resources.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { stringify } from "yaml";
import { readCrds } from "../../lib/crd-schema.js";
import { crdCauses } from "./crd-admit.js";
import { startKubeServer, type KubeServer } from "./server.js";
import {
  apiError,
  AWP,
  clients,
  type Clients,
  jsonPatch,
  mergePatch,
  strategicPatch,
  TR,
  trainingRun,
} from "./testkit.js";

describe("kube server: custom resources from crds/", () => {
  let kube: KubeServer;
  let c: Clients;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", sim: false });
    c = clients(kube);
  });
  afterEach(() => kube.stop());

  const create = (body: Record<string, unknown>): Promise<any> =>
    c.custom.createNamespacedCustomObject({ ...TR, namespace: "default", body });

  it("rejects an invalid TrainingRun with 422 Invalid and one cause per field", async () => {
    const e = await apiError(() => create(trainingRun("r", { model: {}, algorithm: { name: "ppo-ish" } })));
    expect(e.code).to.equal(422);
    expect(e.body.reason).to.equal("Invalid");
    expect(e.body.details).to.include({ name: "r", group: "l0.dev", kind: "TrainingRun" });
    const byField = Object.fromEntries(e.body.details.causes.map((x: any) => [x.field, x.reason]));
    expect(byField["spec.model.name"]).to.equal("FieldValueRequired");
    expect(byField["spec.algorithm.name"]).to.equal("FieldValueNotSupported");
    expect(e.body.message).to.match(/^TrainingRun\.l0\.dev "r" is invalid: \[/);
  });

  it("rejects a model that needs an external engine without spec.inference, naming the field", async () => {
    const model = { name: "Qwen/Qwen2.5-7B-Instruct" };
    const e = await apiError(() => create(trainingRun("r", { model })));
    expect(e.code).to.equal(422);
    const cause = e.body.details.causes.find((x: any) => x.field === "spec.inference");
    expect(cause, JSON.stringify(e.body.details.causes)).to.not.equal(undefined);
    expect(cause.message).to.match(/required unless spec.model.name is tiny/);
    // With an engine, or with the built-in model and its colocated engine, the run is admitted.
    await create(trainingRun("r", { model, inference: {} }));
    await create(trainingRun("s", { model: { name: "tiny" } }));
    await create(trainingRun("t", { model: { name: "tiny-qwen2" } }));
  });

  it("prunes unknown fields and applies schema defaults on create and update", async () => {
    const r = await create(trainingRun("r", { bogus: 1, dataset: { path: "/d", nope: true } }));
    expect(r.spec.bogus).to.equal(undefined);
    expect(r.spec.dataset.nope).to.equal(undefined);
    expect(r.spec.dataset.questionField).to.equal("question");
    delete r.spec.dataset.questionField;
    const u = await c.custom.replaceNamespacedCustomObject({
      ...TR,
      namespace: "default",
      name: "r",
      body: r,
    });
    expect(u.spec.dataset.questionField).to.equal("question");
  });

  it("ignores status on the main endpoint and everything but status on /status", async () => {
    const r = await create({ ...trainingRun("r"), status: { phase: "Running" } });
    expect(r.status).to.equal(undefined);
    r.status = { phase: "Running" };
    r.spec.dataset.path = "/other";
    const u = await c.custom.replaceNamespacedCustomObject({
      ...TR,
      namespace: "default",
      name: "r",
      body: r,
    });
    expect(u.status).to.equal(undefined);
    expect(u.spec.dataset.path).to.equal("/other");
    u.status = { phase: "Running", step: 3 };
    u.spec.dataset.path = "/ignored";
    const s = await c.custom.replaceNamespacedCustomObjectStatus({
      ...TR,
      namespace: "default",
      name: "r",
      body: u,
    });
    expect(s.status).to.deep.include({ phase: "Running", step: 3 });
    expect(s.spec.dataset.path).to.equal("/other");
  });

  it("bumps generation on spec changes only, not on status or metadata changes", async () => {
    const r = await create(trainingRun("r"));
    expect(r.metadata.generation).to.equal(1);
    const labelled = await c.custom.patchNamespacedCustomObject(
      { ...TR, namespace: "default", name: "r", body: { metadata: { labels: { a: "b" } } } },
      mergePatch,
    );
    expect(labelled.metadata.generation).to.equal(1);
    const st = await c.custom.patchNamespacedCustomObjectStatus(
      { ...TR, namespace: "default", name: "r", body: { status: { step: 1 } } },
      mergePatch,
    );
    expect(st.metadata.generation).to.equal(1);
    expect(Number(st.metadata.resourceVersion)).to.be.greaterThan(Number(labelled.metadata.resourceVersion));
    const spec = await c.custom.patchNamespacedCustomObject(
      { ...TR, namespace: "default", name: "r", body: { spec: { dataset: { path: "/data/other.jsonl" } } } },
      mergePatch,
    );
    expect(spec.metadata.generation).to.equal(2);
  });

  it("validates status writes against the schema too", async () => {
    await create(trainingRun("r"));
    const e = await apiError(() =>
      c.custom.patchNamespacedCustomObjectStatus(
        { ...TR, namespace: "default", name: "r", body: { status: { step: "three" } } },
        mergePatch,
      ),
    );
    expect(e.code).to.equal(422);
    expect(e.body.details.causes[0]).to.include({ field: "status.step", reason: "FieldValueTypeInvalid" });
  });

  it("refuses strategic merge patch for custom resources with 415, as a real server does", async () => {
    await create(trainingRun("r"));
    const e = await apiError(() =>
      c.custom.patchNamespacedCustomObject(
        { ...TR, namespace: "default", name: "r", body: { spec: {} } },
        strategicPatch,
      ),
    );
    expect(e.code).to.equal(415);
    expect(e.body.reason).to.equal("UnsupportedMediaType");
    // client-node's default patch content type is JSON patch: a merge-style body is then a 400.
    const e2 = await apiError(() =>
      c.custom.patchNamespacedCustomObject({ ...TR, namespace: "default", name: "r", body: { spec: {} } }),
    );
    expect(e2.code).to.equal(400);
    const ok = await c.custom.patchNamespacedCustomObject(
      {
        ...TR,
        namespace: "default",
        name: "r",
        body: [{ op: "replace", path: "/spec/dataset/path", value: "/d3" }],
      },
      jsonPatch,
    );
    expect(ok.spec.dataset.path).to.equal("/d3");
  });

  it("serves the scale subresource from the CRD's replicas paths", async () => {
    await c.custom.createNamespacedCustomObject({
      ...AWP,
      namespace: "default",
      body: {
        apiVersion: "l0.dev/v1alpha1",
        kind: "AgentWorkerPool",
        metadata: { name: "w" },
        spec: { hubRef: { name: "r" }, replicas: 2 },
      },
    });
    const s = await c.custom.getNamespacedCustomObjectScale({ ...AWP, namespace: "default", name: "w" });
    expect(s).to.deep.include({ kind: "Scale", apiVersion: "autoscaling/v1" });
    expect(s.spec.replicas).to.equal(2);
    const up = await c.custom.patchNamespacedCustomObjectScale(
      { ...AWP, namespace: "default", name: "w", body: { spec: { replicas: 5 } } },
      mergePatch,
    );
    expect(up.spec.replicas).to.equal(5);
    const pool = await c.custom.getNamespacedCustomObject({ ...AWP, namespace: "default", name: "w" });
    expect(pool.spec.replicas).to.equal(5);
    expect(pool.metadata.generation).to.equal(2);
    s.spec.replicas = 1; // s carries the old resourceVersion
    expect(
      (
        await apiError(() =>
          c.custom.replaceNamespacedCustomObjectScale({ ...AWP, namespace: "default", name: "w", body: s }),
        )
      ).code,
    ).to.equal(409);
    const neg = await apiError(() =>
      c.custom.patchNamespacedCustomObjectScale(
        { ...AWP, namespace: "default", name: "w", body: { spec: { replicas: -1 } } },
        mergePatch,
      ),
    );
    expect(neg.code).to.equal(422);
  });

  it("serves the CRD's printer columns as a Table when asked (kubectl get)", async () => {
    await create(trainingRun("r"));
    await c.custom.patchNamespacedCustomObjectStatus(
      { ...TR, namespace: "default", name: "r", body: { status: { phase: "Running", step: 3 } } },
      mergePatch,
    );
    const res = await fetch(`${kube.url}/apis/l0.dev/v1alpha1/namespaces/default/trainingruns`, {
      headers: {
        Authorization: `Bearer ${kube.token}`,
        Accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
      },
    });
    const table = (await res.json()) as any;
    expect(table.kind).to.equal("Table");
    const names = table.columnDefinitions.map((d: any) => d.name);
    expect(names.slice(0, 3)).to.deep.equal(["Name", "Phase", "Step"]);
    const cells = table.rows[0].cells;
    expect(cells.slice(0, 3)).to.deep.equal(["r", "Running", 3]);
    expect(cells[names.indexOf("Age")]).to.match(/^\d+s$/);
  });

  it("serves the Deployment scale subresource with its selector", async () => {
    await c.apps.createNamespacedDeployment({
      namespace: "default",
      body: {
        metadata: { name: "d" },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: "d" } },
          template: { metadata: { labels: { app: "d" } }, spec: { containers: [{ name: "c", image: "i" }] } },
        },
      },
    });
    const s = await c.apps.readNamespacedDeploymentScale({ name: "d", namespace: "default" });
    expect(s.status?.selector).to.equal("app=d");
    await c.apps.replaceNamespacedDeploymentScale({
      name: "d",
      namespace: "default",
      body: { ...s, spec: { replicas: 4 } },
    });
    expect(
      (await c.apps.readNamespacedDeployment({ name: "d", namespace: "default" })).spec?.replicas,
    ).to.equal(4);
  });
});

describe("kube server: CRD admission and CEL rules, as a real API server", () => {
  // The rule as shipped before it was guarded: a real v1.36 server refused both CRDs for it.
  const OLD_RULE = "self.minReplicas <= self.maxReplicas";
  const withOldRule = (): Record<string, any> => {
    const crd = structuredClone(readCrds("crds").find((x) => x.kind === "AgentWorkerPool")!.crd) as any;
    crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.autoscaling[
      "x-kubernetes-validations"
    ][0].rule = OLD_RULE;
    return crd;
  };

  it("refuses a CRD whose rule fails on a default as written (no nested defaulting)", () => {
    const causes = crdCauses(withOldRule());
    expect(causes).to.have.length(1);
    expect(causes[0]!.field).to.equal(
      "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[autoscaling].default.minReplicas",
    );
    expect(causes[0]!.message).to.contain(`no such key: minReplicas evaluating rule: ${OLD_RULE}`);
  });

  it("refuses to serve such CRDs from a directory, and through the API", async () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-crds-"));
    try {
      writeFileSync(join(dir, "pools.yaml"), stringify(withOldRule()));
      let err: Error | undefined;
      await startKubeServer({ crdDir: dir, sim: false }).then(
        (k) => k.stop(),
        (e: Error) => (err = e),
      );
      expect(err?.message).to.match(/agentworkerpools\.l0\.dev is invalid: .*no such key: minReplicas/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const kube = await startKubeServer({ crdDir: "crds", sim: false });
    try {
      // Raw JSON: client-node's typed serializer would drop the `x-kubernetes-*` keys.
      const res = await fetch(`${kube.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`, {
        method: "POST",
        headers: { Authorization: `Bearer ${kube.token}`, "Content-Type": "application/json" },
        body: JSON.stringify(withOldRule()),
      });
      expect(res.status).to.equal(422);
      expect(((await res.json()) as { message: string }).message).to.contain("no such key: minReplicas");
    } finally {
      await kube.stop();
    }
  });

  it("rejects a custom resource that breaks a rule with 422, at the rule's path", async () => {
    const kube = await startKubeServer({ crdDir: "crds", sim: false });
    try {
      const c = clients(kube);
      const e = await apiError(() =>
        c.custom.createNamespacedCustomObject({
          ...TR,
          namespace: "default",
          body: trainingRun("r", { workers: { autoscaling: { minReplicas: 4, maxReplicas: 2 } } }),
        }),
      );
      expect(e.code).to.equal(422);
      expect(e.body.details.causes).to.deep.equal([
        {
          reason: "FieldValueInvalid",
          field: "spec.workers.autoscaling.minReplicas",
          message: 'Invalid value: "object": must be <= maxReplicas',
        },
      ]);
      // The defaults fill what the user left out before the rules run: min 1 <= max 10.
      await c.custom.createNamespacedCustomObject({
        ...TR,
        namespace: "default",
        body: trainingRun("ok", { workers: { autoscaling: { maxReplicas: 3 } } }),
      });
    } finally {
      await kube.stop();
    }
  });
});
