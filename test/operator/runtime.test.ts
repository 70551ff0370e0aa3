// Pure and in-memory parts of the controller runtime: backoff, the work queue, drift, conditions,
// predicates, and the informer cache against the in-process API server.
import { expect } from "chai";
import fc from "fast-check";
import { silentLogger } from "../../lib/log.js";
import { backoffDelay } from "../../operator/runtime/backoff.js";
import { setCondition } from "../../operator/runtime/conditions.js";
import { type Obj, drifted, isSubset, mergePatchFor } from "../../operator/runtime/diff.js";
import { Informer } from "../../operator/runtime/informer.js";
import { RestKubeApi, resourcePath, RESOURCES } from "../../operator/runtime/kube.js";
import { primaryChanged } from "../../operator/runtime/predicates.js";
import { WorkQueue } from "../../operator/runtime/queue.js";
import { startKubeServer } from "../kube/server.js";
import { eventually } from "./harness.js";

describe("operator runtime: backoff", () => {
  const P = { baseMs: 100, maxMs: 10_000, jitter: 0 };
  for (const [n, want] of [
    [1, 100],
    [2, 200],
    [3, 400],
    [8, 10_000],
    [1000, 10_000],
  ] as const)
    it(`failure ${n} waits ${want} ms without jitter`, () => expect(backoffDelay(n, P, 0.7)).to.equal(want));
  it("jitter stays within [delay/2, delay] and the cap holds", () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (n, r) => {
          const d = backoffDelay(n, { baseMs: 50, maxMs: 5000, jitter: 1 }, r);
          const full = Math.min(5000, 50 * 2 ** (n - 1));
          return d <= full && d >= Math.floor(full / 2);
        },
      ),
    ));
});

describe("operator runtime: work queue", () => {
  it("coalesces a key queued twice and never runs one key twice at once", async () => {
    const q = new WorkQueue();
    let running = 0;
    let maxRunning = 0;
    const seen: string[] = [];
    q.add("a");
    q.add("a");
    q.add("b");
    const done = q.run(4, async (k) => {
      seen.push(k);
      running++;
      maxRunning = Math.max(maxRunning, running);
      if (seen.length === 1) q.add("a"); // an add while "a" runs re-queues it after
      await new Promise((r) => setTimeout(r, 20));
      running--;
    });
    await eventually(() => seen.length === 3, "three runs");
    q.stop();
    await done;
    expect(seen.sort()).to.deep.equal(["a", "a", "b"]);
    expect(maxRunning).to.be.at.most(2);
  });

  it("retries a failure with backoff, counts retries, and forget resets the count", async () => {
    let retries = 0;
    const q = new WorkQueue({
      backoff: { baseMs: 10, maxMs: 40, jitter: 0 },
      hooks: { retry: () => retries++ },
    });
    let calls = 0;
    const done = q.run(1, async () => {
      calls++;
      if (calls < 3) throw new Error("boom");
    });
    q.add("k");
    await eventually(() => calls === 3, "third try");
    expect(retries).to.equal(2);
    expect(q.failures("k")).to.equal(2);
    q.forget("k");
    expect(q.failures("k")).to.equal(0);
    q.stop();
    await done;
  });

  it("addAfter keeps the earliest pending delay; stop drops timers", async () => {
    const q = new WorkQueue();
    const seen: string[] = [];
    const done = q.run(1, async (k) => void seen.push(k));
    q.addAfter("x", 5000);
    q.addAfter("x", 10);
    await eventually(() => seen.length === 1, "x after 10 ms");
    q.stop();
    await done;
    expect(seen).to.deep.equal(["x"]);
  });
});

describe("operator runtime: drift and conditions", () => {
  it("treats server-defaulted fields as no drift, and missing or changed ones as drift", () => {
    const want = {
      metadata: { labels: { a: "1" }, ownerReferences: [{ uid: "u" }] },
      spec: { ports: [{ port: 80 }] },
    };
    const same = {
      metadata: { labels: { a: "1", extra: "x" }, ownerReferences: [{ uid: "u" }] },
      spec: { ports: [{ port: 80, protocol: "TCP" }], clusterIP: "10.0.0.1" },
    };
    expect(drifted(want, same)).to.equal(false);
    expect(drifted(want, { ...same, spec: { ports: [{ port: 81 }] } })).to.equal(true);
    expect(
      drifted(want, { ...same, spec: { ports: [{ port: 80 }, { port: 81 }] } }),
      "extra list item",
    ).to.equal(true);
    expect(drifted(want, { ...same, metadata: { labels: { a: "1" } } }), "owner missing").to.equal(true);
    expect(isSubset({ a: undefined }, {})).to.equal(true);
    expect(mergePatchFor(want)).to.deep.equal({
      metadata: { labels: { a: "1" }, annotations: undefined, ownerReferences: [{ uid: "u" }] },
      spec: want.spec,
    });
  });

  it("compares resource quantities by value: the server's canonical form is no drift", () => {
    const pod = (resources: object, sizeLimit?: string) => ({
      spec: {
        template: {
          spec: {
            containers: [{ name: "w", resources }],
            ...(sizeLimit ? { volumes: [{ name: "t", emptyDir: { sizeLimit } }] } : {}),
          },
        },
      },
    });
    const cases: [Obj, Obj, boolean][] = [
      [
        pod({ requests: { cpu: "1000m", memory: "2048Mi" } }),
        pod({ requests: { cpu: "1", memory: "2Gi" } }),
        false,
      ],
      [pod({ limits: { memory: "9216Mi" } }, "1024Mi"), pod({ limits: { memory: "9Gi" } }, "1Gi"), false],
      [pod({ requests: { cpu: "1" } }), pod({ requests: { cpu: "2" } }), true],
      [pod({ limits: { memory: "1Gi" } }), pod({ limits: { memory: "1G" } }), true],
      // Only quantities compare by value: an env value "1000m" is text.
      [{ spec: { env: [{ value: "1000m" }] } }, { spec: { env: [{ value: "1" }] } }, true],
    ];
    for (const [want, got, drift] of cases)
      expect(drifted(want, got), JSON.stringify([want, got])).to.equal(drift);
  });

  it("moves lastTransitionTime only when a condition's status flips", () => {
    const t1 = new Date("2026-01-01T00:00:00Z");
    const t2 = new Date("2026-01-01T01:00:00Z");
    let c = setCondition([], { type: "Ready", status: "False", reason: "A", message: "a" }, t1, 1);
    c = setCondition(c, { type: "Ready", status: "False", reason: "B", message: "b" }, t2, 2);
    expect(c).to.deep.equal([
      {
        type: "Ready",
        status: "False",
        reason: "B",
        message: "b",
        lastTransitionTime: "2026-01-01T00:00:00Z",
        observedGeneration: 2,
      },
    ]);
    c = setCondition(c, { type: "Ready", status: "True", reason: "C", message: "c" }, t2, 2);
    expect(c[0]!.lastTransitionTime).to.equal("2026-01-01T01:00:00Z");
  });

  it("skips status-only updates of the reconciled kind", () => {
    const base = { metadata: { generation: 1, resourceVersion: "1", labels: { a: "1" } } };
    expect(primaryChanged(base, { metadata: { ...base.metadata, resourceVersion: "2" } })).to.equal(false);
    expect(primaryChanged(base, { metadata: { ...base.metadata, generation: 2 } })).to.equal(true);
    expect(primaryChanged(base, { metadata: { ...base.metadata, deletionTimestamp: new Date() } })).to.equal(
      true,
    );
    expect(primaryChanged(base, { metadata: { ...base.metadata, labels: { a: "2" } } })).to.equal(true);
  });

  it("builds REST paths for core, grouped and custom kinds", () => {
    expect(resourcePath(RESOURCES.Secret, "ns", "x")).to.equal("/api/v1/namespaces/ns/secrets/x");
    expect(resourcePath(RESOURCES.Job, "ns")).to.equal("/apis/batch/v1/namespaces/ns/jobs");
    expect(resourcePath(RESOURCES.TrainingRun, "ns", "r", "status")).to.equal(
      "/apis/l0.dev/v1alpha1/namespaces/ns/trainingruns/r/status",
    );
    expect(resourcePath(RESOURCES.Deployment)).to.equal("/apis/apps/v1/deployments");
  });
});

describe("operator runtime: informer", function () {
  this.timeout(15_000);
  it("lists, watches, indexes by owner, and relists after 410 Gone without missing a delete", async () => {
    const kube = await startKubeServer({ crdDir: "crds", sim: false });
    const api = new RestKubeApi({ kubeConfig: kube.kubeConfig() });
    const events: string[] = [];
    const inf = new Informer({
      api,
      kind: "ConfigMap",
      namespace: "default",
      logger: silentLogger(),
      relistJitterMs: 20,
      handlers: {
        add: (o) => events.push(`add ${o.metadata?.name}`),
        delete: (o) => events.push(`del ${o.metadata?.name}`),
      },
    });
    try {
      await api.create("ConfigMap", {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: "a",
          namespace: "default",
          ownerReferences: [{ apiVersion: "v1", kind: "X", name: "o", uid: "owner-1" }],
        },
      });
      await inf.start();
      expect(inf.get("default", "a")).to.exist;
      expect(inf.ownedBy("owner-1").map((o) => o.metadata?.name)).to.deep.equal(["a"]);
      await api.create("ConfigMap", {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "b", namespace: "default" },
      });
      await eventually(() => inf.get("default", "b"), "watch sees b");
      // While the watch is cut and history compacted, a delete happens: only a relist can see it.
      kube.faults.cutWatches();
      await api.delete("ConfigMap", "default", "a");
      kube.compact();
      await eventually(() => !inf.get("default", "a"), "relist notices the delete");
      expect(inf.ownedBy("owner-1")).to.deep.equal([]);
      expect(events).to.include.members(["add a", "add b", "del a"]);
    } finally {
      await inf.stop();
      await kube.stop();
    }
  });
});
