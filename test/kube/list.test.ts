// Lists: label selectors (equality and set-based), field selectors, limit/continue pages from
// one snapshot, 410 for an expired continue token; plus the selector parser as a table.
import { expect } from "chai";
import { matchesLabels, parseLabelSelector } from "./selectors.js";
import { startKubeServer, type KubeServer } from "./server.js";
import { apiError, clients, type Clients, mergePatch } from "./testkit.js";

describe("kube server: label selector parsing (pure)", () => {
  const labels = { app: "l0", role: "worker", tier: "cpu" };
  const table: [string, boolean][] = [
    ["app=l0", true],
    ["app==l0,role=worker", true],
    ["app!=l0", false],
    ["role in (hub, worker)", true],
    ["role notin (worker)", false],
    ["tier", true],
    ["!tier", false],
    ["!gpu", true],
    ["app=l0,role in (hub)", false],
    ["", true],
  ];
  for (const [sel, want] of table)
    it(`"${sel}" -> ${want}`, () => expect(matchesLabels(parseLabelSelector(sel), labels)).to.equal(want));
  it("rejects garbage with 400", () =>
    expect(() => parseLabelSelector("a in b"))
      .to.throw()
      .with.property("code", 400));
});

describe("kube server: list", () => {
  let kube: KubeServer;
  let c: Clients;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", sim: false, namespaces: ["other"] });
    c = clients(kube);
    for (const [ns, name, role] of [
      ["default", "a", "worker"],
      ["default", "b", "hub"],
      ["default", "c", "worker"],
      ["other", "d", "worker"],
    ])
      await c.core.createNamespacedConfigMap({
        namespace: ns!,
        body: { metadata: { name, labels: { role: role! } } },
      });
  });
  afterEach(() => kube.stop());

  const names = (l: { items: { metadata?: { name?: string } }[] }): string[] =>
    l.items.map((i) => i.metadata!.name!);

  it("filters by label selector within a namespace and across namespaces", async () => {
    expect(
      names(await c.core.listNamespacedConfigMap({ namespace: "default", labelSelector: "role=worker" })),
    ).to.deep.equal(["a", "c"]);
    expect(
      names(await c.core.listConfigMapForAllNamespaces({ labelSelector: "role in (worker)" })),
    ).to.deep.equal(["a", "c", "d"]);
    expect(
      names(await c.core.listNamespacedConfigMap({ namespace: "default", labelSelector: "role!=worker" })),
    ).to.deep.equal(["b"]);
  });

  it("filters by metadata.name and metadata.namespace field selectors, and refuses unknown fields", async () => {
    expect(
      names(await c.core.listConfigMapForAllNamespaces({ fieldSelector: "metadata.namespace=other" })),
    ).to.deep.equal(["d"]);
    expect(
      names(
        await c.core.listNamespacedConfigMap({ namespace: "default", fieldSelector: "metadata.name!=a" }),
      ),
    ).to.deep.equal(["b", "c"]);
    expect(
      (
        await apiError(() =>
          c.core.listNamespacedConfigMap({ namespace: "default", fieldSelector: "data.x=1" }),
        )
      ).code,
    ).to.equal(400);
  });

  it("returns the list's resourceVersion and items without kind for built-ins", async () => {
    const l = await c.core.listNamespacedConfigMap({ namespace: "default" });
    expect(Number(l.metadata?.resourceVersion)).to.equal(kube.store.resourceVersion);
    expect(l.kind).to.equal("ConfigMapList");
  });

  it("serves resourceVersionMatch=Exact from history, 410 once compacted, 504 for a future version", async () => {
    const before = await c.core.listNamespacedConfigMap({ namespace: "default" });
    const rv = before.metadata!.resourceVersion!;
    await c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "new" } } });
    await c.core.deleteNamespacedConfigMap({ name: "a", namespace: "default" });
    await c.core.patchNamespacedConfigMap(
      { name: "b", namespace: "default", body: { data: { x: "1" } } },
      mergePatch,
    );
    const exact = await c.core.listNamespacedConfigMap({
      namespace: "default",
      resourceVersion: rv,
      resourceVersionMatch: "Exact",
    });
    expect(names(exact)).to.deep.equal(["a", "b", "c"]);
    expect(exact.items.find((i) => i.metadata?.name === "b")?.data).to.equal(undefined);
    expect(exact.metadata?.resourceVersion).to.equal(rv);
    const latest = await c.core.listNamespacedConfigMap({
      namespace: "default",
      resourceVersion: rv,
      resourceVersionMatch: "NotOlderThan",
    });
    expect(names(latest)).to.deep.equal(["b", "c", "new"]);
    const future = await apiError(() =>
      c.core.listNamespacedConfigMap({
        namespace: "default",
        resourceVersion: String(Number(latest.metadata!.resourceVersion) + 10),
      }),
    );
    expect(future.code).to.equal(504);
    kube.compact();
    const old = await apiError(() =>
      c.core.listNamespacedConfigMap({
        namespace: "default",
        resourceVersion: rv,
        resourceVersionMatch: "Exact",
      }),
    );
    expect(old.code).to.equal(410);
  });

  it("pages with limit/continue from a snapshot taken at the first page", async () => {
    const p1 = await c.core.listNamespacedConfigMap({ namespace: "default", limit: 2 });
    expect(names(p1)).to.deep.equal(["a", "b"]);
    expect(p1.metadata?.remainingItemCount).to.equal(1);
    await c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "bb" } } });
    const p2 = await c.core.listNamespacedConfigMap({
      namespace: "default",
      limit: 2,
      _continue: p1.metadata!._continue!,
    });
    expect(names(p2)).to.deep.equal(["c"]);
    expect(p2.metadata?._continue).to.equal(undefined);
    expect(p2.metadata?.resourceVersion).to.equal(p1.metadata?.resourceVersion);
  });

  it("answers 410 Expired for a continue token older than the compacted history", async () => {
    const p1 = await c.core.listNamespacedConfigMap({ namespace: "default", limit: 1 });
    await c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "z" } } });
    kube.compact();
    const e = await apiError(() =>
      c.core.listNamespacedConfigMap({ namespace: "default", limit: 1, _continue: p1.metadata!._continue! }),
    );
    expect(e.code).to.equal(410);
    expect(e.body.reason).to.equal("Expired");
  });
});
