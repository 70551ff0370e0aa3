// Patch types: strategic merge patch rules as a table of pure cases, and each content type
// through the real client (merge, JSON patch, strategic, 415, 409 on a stale resourceVersion).
import { expect } from "chai";
import { jsonPatch as applyJsonPatch, mergePatch as applyMergePatch, strategicMergePatch } from "./patch.js";
import { startKubeServer, type KubeServer } from "./server.js";
import {
  apiError,
  clients,
  type Clients,
  deployment,
  jsonPatch,
  mergePatch,
  strategicPatch,
} from "./testkit.js";

const pod = (containers: object[], extra: object = {}): Record<string, any> => ({
  spec: { containers, ...extra },
});

describe("kube server: patch semantics (pure)", () => {
  const cases: [string, Record<string, any>, unknown, Record<string, any>][] = [
    [
      "containers merge by name, env by name",
      pod([
        {
          name: "a",
          image: "x",
          env: [
            { name: "A", value: "1" },
            { name: "B", value: "2" },
          ],
        },
      ]),
      pod([
        {
          name: "a",
          env: [
            { name: "B", value: "3" },
            { name: "C", value: "4" },
          ],
        },
      ]),
      pod([
        {
          name: "a",
          image: "x",
          env: [
            { name: "A", value: "1" },
            { name: "B", value: "3" },
            { name: "C", value: "4" },
          ],
        },
      ]),
    ],
    [
      "a new container is appended, $patch: delete removes one",
      pod([
        { name: "a", image: "x" },
        { name: "b", image: "y" },
      ]),
      pod([
        { name: "b", $patch: "delete" },
        { name: "c", image: "z" },
      ]),
      pod([
        { name: "a", image: "x" },
        { name: "c", image: "z" },
      ]),
    ],
    [
      "container ports merge by containerPort",
      pod([{ name: "a", ports: [{ containerPort: 80, name: "http" }] }]),
      pod([{ name: "a", ports: [{ containerPort: 80, protocol: "TCP" }, { containerPort: 9090 }] }]),
      pod([
        { name: "a", ports: [{ containerPort: 80, name: "http", protocol: "TCP" }, { containerPort: 9090 }] },
      ]),
    ],
    [
      "volumes merge by name, args (no strategy) are replaced",
      pod([{ name: "a", args: ["1", "2"] }], { volumes: [{ name: "v", emptyDir: {} }] }),
      pod([{ name: "a", args: ["3"] }], { volumes: [{ name: "w", secret: { secretName: "s" } }] }),
      pod([{ name: "a", args: ["3"] }], {
        volumes: [
          { name: "v", emptyDir: {} },
          { name: "w", secret: { secretName: "s" } },
        ],
      }),
    ],
    [
      "$patch: replace on a list replaces it",
      pod([{ name: "a" }, { name: "b" }]),
      pod([{ $patch: "replace" }, { name: "c" }]),
      pod([{ name: "c" }]),
    ],
    [
      "null deletes a key; finalizers merge as a set; $deleteFromPrimitiveList removes",
      { metadata: { finalizers: ["a"], labels: { x: "1", y: "2" } } },
      {
        metadata: {
          finalizers: ["b", "a"],
          labels: { x: null },
          "$deleteFromPrimitiveList/finalizers": ["a"],
        },
      },
      { metadata: { finalizers: ["b"], labels: { y: "2" } } },
    ],
    [
      "$retainKeys keeps only the listed keys; $setElementOrder orders a merged list",
      {
        spec: {
          strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1 } },
          ...pod([{ name: "a" }, { name: "b" }]).spec,
        },
      },
      {
        spec: {
          strategy: { type: "Recreate", $retainKeys: ["type"] },
          "$setElementOrder/containers": [{ name: "b" }, { name: "a" }],
          containers: [{ name: "a", image: "x" }],
        },
      },
      { spec: { strategy: { type: "Recreate" }, containers: [{ name: "b" }, { name: "a", image: "x" }] } },
    ],
  ];
  for (const [name, target, patch, want] of cases)
    it(`strategic: ${name}`, () => expect(strategicMergePatch(target, patch)).to.deep.equal(want));

  it("merge patch replaces lists and deletes on null", () => {
    expect(applyMergePatch({ a: [1, 2], b: { c: 1, d: 2 } }, { a: [3], b: { c: null } })).to.deep.equal({
      a: [3],
      b: { d: 2 },
    });
  });

  it("JSON patch: a failed test op is 422, a non-array body 400", () => {
    expect(() => applyJsonPatch({ a: 1 }, [{ op: "test", path: "/a", value: 2 }]))
      .to.throw()
      .with.property("code", 422);
    expect(() => applyJsonPatch({ a: 1 }, { a: 2 }))
      .to.throw()
      .with.property("code", 400);
  });
});

describe("kube server: patch through the client", () => {
  let kube: KubeServer;
  let c: Clients;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", sim: false });
    c = clients(kube);
    await c.apps.createNamespacedDeployment({ namespace: "default", body: deployment("web") });
  });
  afterEach(() => kube.stop());

  it("strategic merge patch merges the container list by name", async () => {
    const d = await c.apps.patchNamespacedDeployment(
      {
        name: "web",
        namespace: "default",
        body: { spec: { template: { spec: { containers: [{ name: "side", image: "s:1" }] } } } },
      },
      strategicPatch,
    );
    expect(d.spec?.template.spec?.containers.map((x) => x.name)).to.deep.equal(["main", "side"]);
    expect(d.spec?.template.spec?.containers[1]?.terminationMessagePath).to.equal("/dev/termination-log");
    expect(d.metadata?.generation).to.equal(2);
  });

  it("merge patch replaces the container list", async () => {
    const d = await c.apps.patchNamespacedDeployment(
      {
        name: "web",
        namespace: "default",
        body: { spec: { template: { spec: { containers: [{ name: "side", image: "s:1" }] } } } },
      },
      mergePatch,
    );
    expect(d.spec?.template.spec?.containers.map((x) => x.name)).to.deep.equal(["side"]);
  });

  it("JSON patch applies operations, and a patch with a stale resourceVersion gets 409", async () => {
    const d = await c.apps.patchNamespacedDeployment(
      { name: "web", namespace: "default", body: [{ op: "replace", path: "/spec/replicas", value: 3 }] },
      jsonPatch,
    );
    expect(d.spec?.replicas).to.equal(3);
    const stale = await apiError(() =>
      c.apps.patchNamespacedDeployment(
        {
          name: "web",
          namespace: "default",
          body: { metadata: { resourceVersion: "1" }, spec: { replicas: 4 } },
        },
        mergePatch,
      ),
    );
    expect(stale.code).to.equal(409);
    const same = await c.apps.patchNamespacedDeployment(
      {
        name: "web",
        namespace: "default",
        body: { metadata: { resourceVersion: d.metadata?.resourceVersion }, spec: { replicas: 4 } },
      },
      mergePatch,
    );
    expect(same.spec?.replicas).to.equal(4);
  });

  it("a patch that changes nothing keeps the resourceVersion; an unknown content type is 415; a missing object 404", async () => {
    const before = await c.apps.readNamespacedDeployment({ name: "web", namespace: "default" });
    const d = await c.apps.patchNamespacedDeployment(
      { name: "web", namespace: "default", body: { spec: { replicas: 1 } } },
      mergePatch,
    );
    expect(d.metadata?.resourceVersion).to.equal(before.metadata?.resourceVersion);
    const res = await fetch(`${kube.url}/apis/apps/v1/namespaces/default/deployments/web`, {
      method: "PATCH",
      headers: { "Content-Type": "text/plain", Authorization: `Bearer ${kube.token}` },
      body: "x",
    });
    expect(res.status).to.equal(415);
    expect(((await res.json()) as { reason: string }).reason).to.equal("UnsupportedMediaType");
    expect(
      (
        await apiError(() =>
          c.apps.patchNamespacedDeployment({ name: "nope", namespace: "default", body: {} }, mergePatch),
        )
      ).code,
    ).to.equal(404);
  });
});
