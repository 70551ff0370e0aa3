// Less common paths the operator may still hit: dryRun, deletecollection, orphanDependents,
// 405, a watch from the future (504), sendInitialEvents, YAML bodies, Service port merge keys.
import { expect } from "chai";
import * as k8s from "@kubernetes/client-node";
import { startKubeServer, type KubeServer } from "./server.js";
import { apiError, clients, type Clients, eventually, strategicPatch, TR, trainingRun } from "./testkit.js";

describe("kube server: edge cases", () => {
  let kube: KubeServer;
  let c: Clients;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", sim: false });
    c = clients(kube);
  });
  afterEach(() => kube.stop());

  const raw = (method: string, path: string, body?: string, contentType = "application/json") =>
    fetch(`${kube.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${kube.token}`, "Content-Type": contentType },
      ...(body !== undefined ? { body } : {}),
    });

  it("dryRun=All validates and defaults without storing anything", async () => {
    const rv = kube.store.resourceVersion;
    const o = await c.custom.createNamespacedCustomObject({
      ...TR,
      namespace: "default",
      body: trainingRun("r"),
      dryRun: "All",
    });
    expect(o.spec.dataset.questionField).to.equal("question");
    expect(kube.get("l0.dev/v1alpha1", "TrainingRun", "default", "r")).to.equal(undefined);
    const bad = await apiError(() =>
      c.custom.createNamespacedCustomObject({
        ...TR,
        namespace: "default",
        body: trainingRun("r", { model: {} }),
        dryRun: "All",
      }),
    );
    expect(bad.code).to.equal(422);
    await c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "a" } } });
    await c.core.deleteNamespacedConfigMap({ name: "a", namespace: "default", dryRun: "All" });
    expect(kube.get("v1", "ConfigMap", "default", "a")).to.not.equal(undefined);
    expect(kube.store.resourceVersion).to.equal(rv + 1);
  });

  it("deletes a collection by label selector only", async () => {
    for (const [name, role] of [
      ["a", "x"],
      ["b", "x"],
      ["c", "y"],
    ])
      await c.core.createNamespacedConfigMap({
        namespace: "default",
        body: { metadata: { name, labels: { role: role! } } },
      });
    await c.core.deleteCollectionNamespacedConfigMap({ namespace: "default", labelSelector: "role=x" });
    expect(kube.list("v1", "ConfigMap", "default").map((o) => o.metadata.name)).to.deep.equal(["c"]);
  });

  it("honours the legacy orphanDependents flag", async () => {
    const owner = await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "owner" } },
    });
    await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: {
        metadata: {
          name: "dep",
          ownerReferences: [
            { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata!.uid! },
          ],
        },
      },
    });
    await c.core.deleteNamespacedConfigMap({ name: "owner", namespace: "default", orphanDependents: true });
    await eventually(() => kube.get("v1", "ConfigMap", "default", "owner") === undefined, "owner gone");
    await kube.settled();
    expect(kube.get("v1", "ConfigMap", "default", "dep")?.metadata.ownerReferences).to.equal(undefined);
  });

  it("answers 405 for a POST to a named object and 404 for unknown paths and subresources", async () => {
    expect((await raw("POST", "/api/v1/namespaces/default/configmaps/x", "{}")).status).to.equal(405);
    expect((await raw("GET", "/apis/nope.dev/v1/things")).status).to.equal(404);
    await c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "x" } } });
    expect((await raw("GET", "/api/v1/namespaces/default/configmaps/x/status")).status).to.equal(404);
  });

  it("accepts YAML bodies and rejects undecodable ones with 400", async () => {
    const res = await raw(
      "POST",
      "/api/v1/namespaces/default/configmaps",
      "metadata:\n  name: y\ndata:\n  k: v\n",
      "application/yaml",
    );
    expect(res.status).to.equal(201);
    expect(kube.get("v1", "ConfigMap", "default", "y")!.data).to.deep.equal({ k: "v" });
    expect((await raw("POST", "/api/v1/namespaces/default/configmaps", "{nope")).status).to.equal(400);
    expect((await raw("POST", "/api/v1/namespaces/default/configmaps", "x", "text/plain")).status).to.equal(
      415,
    );
  });

  it("answers a watch from a future resourceVersion with 504, and marks the end of initial events", async () => {
    const future = await raw(
      "GET",
      `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${kube.store.resourceVersion + 100}`,
    );
    expect(future.status).to.equal(504);
    await c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "a" } } });
    const seen: { type: string; object: any }[] = [];
    const ctl = await new k8s.Watch(c.kc).watch(
      "/api/v1/namespaces/default/configmaps",
      { sendInitialEvents: true, allowWatchBookmarks: true, resourceVersionMatch: "NotOlderThan" },
      (type, object) => seen.push({ type, object }),
      () => {},
    );
    await eventually(() => seen.length >= 2, "initial events");
    expect(seen[0]!.type).to.equal("ADDED");
    expect(seen[1]!.type).to.equal("BOOKMARK");
    expect(seen[1]!.object.metadata.annotations).to.deep.equal({ "k8s.io/initial-events-end": "true" });
    ctl.abort();
  });

  it("drops unknown fields of built-ins and custom resources with a Warning; 400 with fieldValidation=Strict", async () => {
    const dep = {
      metadata: { name: "w" },
      spec: {
        replicas: 1,
        selector: { matchLabels: { a: "b" } },
        template: {
          metadata: { labels: { a: "b" } },
          spec: { containers: [{ name: "c", image: "i", imagePullPolicyy: "Always" }] },
        },
        replicaz: 3,
      },
    };
    const res = await raw("POST", "/apis/apps/v1/namespaces/default/deployments", JSON.stringify(dep));
    expect(res.status).to.equal(201);
    expect(res.headers.get("warning")).to.contain('unknown field \\"spec.replicaz\\"');
    expect(res.headers.get("warning")).to.contain("spec.template.spec.containers[0].imagePullPolicyy");
    const stored = kube.get("apps/v1", "Deployment", "default", "w")!;
    expect(stored.spec.replicaz).to.equal(undefined);
    expect(stored.spec.template.spec.containers[0].imagePullPolicyy).to.equal(undefined);
    const strict = await raw(
      "POST",
      "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
      JSON.stringify({ metadata: { name: "s" }, dta: {} }),
    );
    expect(strict.status).to.equal(400);
    expect(((await strict.json()) as { message: string }).message).to.contain('unknown field "dta"');
    const cr = await raw(
      "POST",
      "/apis/l0.dev/v1alpha1/namespaces/default/trainingruns",
      JSON.stringify(trainingRun("r", { bogus: 1 })),
    );
    expect(cr.status).to.equal(201);
    expect(cr.headers.get("warning")).to.contain("spec.bogus");
  });

  it("refuses a value of the wrong JSON type with 400, but takes numbers for quantities", async () => {
    const bad = await raw(
      "POST",
      "/api/v1/namespaces/default/configmaps",
      JSON.stringify({ metadata: { name: "t" }, data: { n: 1 } }),
    );
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { message: string }).message).to.contain("cannot unmarshal number");
    const dep = await raw(
      "POST",
      "/apis/apps/v1/namespaces/default/deployments",
      JSON.stringify({
        metadata: { name: "d" },
        spec: {
          replicas: "2",
          selector: { matchLabels: { a: "b" } },
          template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c", image: "i" }] } },
        },
      }),
    );
    expect(dep.status).to.equal(400);
    const pod = await c.core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name: "p" },
        spec: {
          containers: [
            { name: "c", image: "i", resources: { limits: { cpu: 1 as unknown as string, memory: "1Gi" } } },
          ],
        },
      },
    });
    // Stored as the canonical quantity string, as the real server encodes it.
    expect(pod.spec?.containers[0]?.resources?.limits).to.deep.equal({ cpu: "1", memory: "1Gi" });
  });

  it("merges Service ports by port in a strategic merge patch", async () => {
    await c.core.createNamespacedService({
      namespace: "default",
      body: { metadata: { name: "hub" }, spec: { ports: [{ name: "grpc", port: 50051 }] } },
    });
    const s = await c.core.patchNamespacedService(
      { name: "hub", namespace: "default", body: { spec: { ports: [{ name: "metrics", port: 9090 }] } } },
      strategicPatch,
    );
    expect(s.spec?.ports?.map((p) => p.port)).to.deep.equal([50051, 9090]);
    expect(s.spec?.clusterIP).to.match(/^10\.96\./);
  });
});
