// Watches through client-node's Watch: ordered ADDED/MODIFIED/DELETED after a resourceVersion,
// 410 Gone as an ERROR event once history is compacted or outside the window, bookmarks,
// selectors turning MODIFIED into ADDED/DELETED, timeouts and cut streams.
import { expect } from "chai";
import * as k8s from "@kubernetes/client-node";
import { startKubeServer, type KubeServer } from "./server.js";
import { clients, type Clients, eventually } from "./testkit.js";

interface Seen {
  events: { type: string; object: any }[];
  done: boolean;
  err: unknown;
  controller: AbortController;
}

async function watch(
  kc: k8s.KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
): Promise<Seen> {
  const seen: Seen = { events: [], done: false, err: undefined, controller: new AbortController() };
  seen.controller = await new k8s.Watch(kc).watch(
    path,
    query,
    (type, object) => seen.events.push({ type, object }),
    (err) => {
      seen.done = true;
      seen.err = err;
    },
  );
  return seen;
}

describe("kube server: watch", () => {
  let kube: KubeServer;
  let c: Clients;
  const cms = "/api/v1/namespaces/default/configmaps";
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", sim: false, historyWindow: 20, bookmarkIntervalMs: 50 });
    c = clients(kube);
  });
  afterEach(() => kube.stop());

  const cm = (name: string, labels: Record<string, string> = {}) =>
    c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name, labels }, data: { v: "0" } },
    });

  it("streams events after a resourceVersion in commit order, each with a rising resourceVersion", async () => {
    const a = await cm("a");
    const w = await watch(c.kc, cms, { resourceVersion: a.metadata!.resourceVersion });
    await cm("b");
    await c.core.patchNamespacedConfigMap({
      name: "a",
      namespace: "default",
      body: [{ op: "add", path: "/data/v", value: "1" }],
    });
    await c.core.deleteNamespacedConfigMap({ name: "b", namespace: "default" });
    await eventually(() => w.events.length === 3, "three events");
    expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`)).to.deep.equal([
      "ADDED b",
      "MODIFIED a",
      "DELETED b",
    ]);
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    expect(rvs).to.deep.equal([...rvs].sort((x, y) => x - y));
    expect(w.events[0]!.object.kind).to.equal("ConfigMap");
    w.controller.abort();
  });

  it("replays history missed while disconnected when resumed from the last resourceVersion seen", async () => {
    const a = await cm("a");
    await cm("b");
    await cm("c");
    const w = await watch(c.kc, cms, { resourceVersion: a.metadata!.resourceVersion });
    await eventually(() => w.events.length === 2, "replayed events");
    expect(w.events.map((e) => e.object.metadata.name)).to.deep.equal(["b", "c"]);
    w.controller.abort();
  });

  it("starts with synthetic ADDED events for the current state when no resourceVersion is given", async () => {
    await cm("a");
    await cm("b");
    const w = await watch(c.kc, cms, {});
    await eventually(() => w.events.length === 2, "initial events");
    expect(w.events.every((e) => e.type === "ADDED")).to.equal(true);
    w.controller.abort();
  });

  it("answers 410 Gone (an ERROR event with an Expired Status) for a resourceVersion older than the window", async () => {
    const first = await cm("a");
    for (let i = 0; i < 25; i++)
      await c.core.patchNamespacedConfigMap({
        name: "a",
        namespace: "default",
        body: [{ op: "replace", path: "/data/v", value: String(i + 1) }],
      });
    const w = await watch(c.kc, cms, { resourceVersion: first.metadata!.resourceVersion });
    await eventually(() => w.done, "watch closed");
    expect(w.events).to.have.length(1);
    expect(w.events[0]!.type).to.equal("ERROR");
    expect(w.events[0]!.object).to.include({ kind: "Status", code: 410, reason: "Expired" });
    expect(w.events[0]!.object.message).to.match(/^too old resource version: \d+ \(\d+\)$/);
  });

  it("answers 410 after compact() even inside the window (forcing an informer relist)", async () => {
    const a = await cm("a");
    await cm("b");
    kube.compact();
    const w = await watch(c.kc, cms, { resourceVersion: a.metadata!.resourceVersion });
    await eventually(() => w.done, "watch closed");
    expect(w.events[0]!.object.code).to.equal(410);
    const fresh = await c.core.listNamespacedConfigMap({ namespace: "default" });
    const w2 = await watch(c.kc, cms, { resourceVersion: fresh.metadata!.resourceVersion });
    await cm("c");
    await eventually(() => w2.events.length === 1, "event after relist");
    w2.controller.abort();
  });

  it("sends BOOKMARK events when allowed, carrying the current resourceVersion", async () => {
    const a = await cm("a");
    const w = await watch(c.kc, cms, {
      resourceVersion: a.metadata!.resourceVersion,
      allowWatchBookmarks: true,
    });
    await eventually(() => w.events.some((e) => e.type === "BOOKMARK"), "a bookmark");
    const b = w.events.find((e) => e.type === "BOOKMARK")!;
    expect(b.object.metadata.resourceVersion).to.equal(a.metadata!.resourceVersion);
    expect(b.object.kind).to.equal("ConfigMap");
    const plain = await watch(c.kc, cms, { resourceVersion: a.metadata!.resourceVersion });
    kube.bookmark();
    await eventually(() => w.events.filter((e) => e.type === "BOOKMARK").length >= 2, "a second bookmark");
    expect(plain.events).to.deep.equal([]);
    w.controller.abort();
    plain.controller.abort();
  });

  it("filters by label selector: leaving the selector is DELETED, entering it ADDED", async () => {
    await cm("a", { role: "worker" });
    const list = await c.core.listNamespacedConfigMap({ namespace: "default" });
    const w = await watch(c.kc, cms, {
      resourceVersion: list.metadata!.resourceVersion,
      labelSelector: "role=worker",
    });
    await cm("other", { role: "hub" });
    await c.core.patchNamespacedConfigMap({
      name: "a",
      namespace: "default",
      body: [{ op: "replace", path: "/metadata/labels/role", value: "hub" }],
    });
    await c.core.patchNamespacedConfigMap({
      name: "other",
      namespace: "default",
      body: [{ op: "replace", path: "/metadata/labels/role", value: "worker" }],
    });
    await eventually(() => w.events.length === 2, "two events");
    expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`)).to.deep.equal([
      "DELETED a",
      "ADDED other",
    ]);
    w.controller.abort();
  });

  it("watches one object through its own path (legacy GET name?watch=1)", async () => {
    const a = await cm("a");
    const w = await watch(c.kc, `${cms}/a`, { resourceVersion: a.metadata!.resourceVersion });
    await cm("b");
    await c.core.patchNamespacedConfigMap({
      name: "a",
      namespace: "default",
      body: [{ op: "add", path: "/data/v", value: "9" }],
    });
    await eventually(() => w.events.length === 1, "one event");
    expect(w.events[0]!.object.metadata.name).to.equal("a");
    w.controller.abort();
  });

  it("ends the stream at timeoutSeconds, and when a fault cuts it", async () => {
    const list = await c.core.listNamespacedConfigMap({ namespace: "default" });
    const timed = await watch(c.kc, cms, {
      resourceVersion: list.metadata!.resourceVersion,
      timeoutSeconds: 1,
    });
    const cut = await watch(c.kc, cms, { resourceVersion: list.metadata!.resourceVersion });
    await eventually(() => kube.faults.openWatches({ resource: "configmaps" }) === 2, "two open watches");
    expect(kube.faults.cutWatches({ resource: "configmaps" })).to.equal(2);
    await eventually(() => timed.done && cut.done, "both closed");
    const again = await watch(c.kc, cms, {
      resourceVersion: list.metadata!.resourceVersion,
      timeoutSeconds: 1,
    });
    await eventually(() => again.done, "closed by timeout", 5000);
  });

  it("keeps an informer's cache in step through create, update, delete and a forced relist", async () => {
    const listFn = () => c.core.listNamespacedConfigMap({ namespace: "default" });
    const inf = k8s.makeInformer(c.kc, cms, listFn);
    await inf.start();
    await cm("a");
    await eventually(() => inf.get("a", "default"), "informer sees a");
    // The informer's reconnect is held back while history moves on and is compacted.
    kube.faults.delay({ verb: "watch", resource: "configmaps" }, 300, 1);
    kube.faults.cutWatches({ resource: "configmaps" });
    await cm("b");
    await c.core.deleteNamespacedConfigMap({ name: "a", namespace: "default" });
    kube.compact();
    await eventually(() => inf.get("b", "default") && !inf.get("a", "default"), "informer relisted", 8000);
    const lists = kube.faults.requests.filter((r) => r.verb === "list" && r.resource === "configmaps");
    expect(lists.length).to.be.at.least(2); // the 410 made it list again
    await inf.stop();
  });
});
