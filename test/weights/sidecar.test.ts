// The sidecar end to end over real gRPC, real files and an HTTP engine stand-in: exactly one
// reload per version, a failing reload keeps the old version (Degraded), four sidecars with peer
// fan-out end with identical bytes while the service sends each byte only once.
import { existsSync } from "node:fs";
import { readFile, readlink, rm } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { expect } from "chai";
import { startServer, type StartedServer } from "../../lib/grpc.js";
import { silentLogger } from "../../lib/log.js";
import { createRegistry } from "../../lib/metrics.js";
import { type Manifest } from "../../lib/weights/manifest.js";
import { weightsMetrics } from "../../lib/weights/metrics.js";
import { createEngine, type EngineKind } from "../../images/inference/engines.js";
import { PeerService, PeerStore } from "../../images/inference/peer.js";
import { Sidecar } from "../../images/inference/sidecar.js";
import { type BulkServer, startBulkServer } from "../../lib/weights/bulk.js";
import { type RangeSource } from "../../lib/weights/stream.js";
import { engineStandIn, sha256File, tempDir, until, writeVersion } from "./fixtures.js";
import { type Harness, startHarness, TOKEN } from "./harness.js";

interface Running {
  sidecar: Sidecar;
  root: string;
  registry: ReturnType<typeof createRegistry>;
  peerServer?: StartedServer;
  /** Offsets this sidecar's bulk channel was asked for (its peers' pulls). */
  bulkSent: number[];
  stop(): Promise<void>;
}

async function startSidecar(
  h: Harness,
  engineId: string,
  engine: { kind: EngineKind; url: string },
  opts: { servePeers?: boolean; bulk?: boolean } = {},
): Promise<Running> {
  const root = await tempDir(`l0-sidecar-${engineId}-`);
  const registry = createRegistry({ defaultMetrics: false });
  const metrics = weightsMetrics(registry);
  const logger = silentLogger();
  const peers = new PeerStore();
  let peerServer: StartedServer | undefined;
  let peerBulk: BulkServer | undefined;
  const bulkSent: number[] = [];
  if (opts.servePeers) {
    const svc = new PeerService({ store: peers, token: TOKEN, logger, metrics });
    peerServer = await startServer((s) => svc.addToServer(s), { host: "127.0.0.1", port: 0 });
    if (opts.bulk) {
      const source: RangeSource = {
        serveRange: (req, out) => (bulkSent.push(Number(req.offset)), svc.serveRange(req, out)),
      };
      peerBulk = await startBulkServer({ source, token: TOKEN, logger, host: "127.0.0.1", port: 0 });
    }
  }
  const sidecar = new Sidecar({
    engineId,
    root,
    service: h.client,
    token: TOKEN,
    engine: createEngine({ kind: engine.kind, url: engine.url, timeoutMs: 5000 }),
    peers,
    logger,
    metrics,
    peerAddress: peerServer?.address ?? "",
    peerBulkPort: peerBulk?.port ?? 0,
    serviceAddress: h.server.address,
    reportIntervalMs: 200,
    retryMs: 100,
    pull: { pieceBytes: 64 * 1024 },
  });
  const abort = new AbortController();
  const done = sidecar.run(abort.signal);
  return {
    sidecar,
    root,
    registry,
    peerServer,
    bulkSent,
    stop: async () => {
      abort.abort();
      await done;
      await peerServer?.stop(100);
      await peerBulk?.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

const serves = (r: Running, v: number) =>
  until(() => r.sidecar.status().version === v, `engine serving v${v}`);

async function publish(h: Harness, v: number, spec = {}): Promise<Manifest> {
  const m = await writeVersion(h.dir, v, spec);
  await h.store.scan();
  return m;
}

describe("weights: sidecar", function () {
  let h: Harness;
  let engine: Awaited<ReturnType<typeof engineStandIn>>;
  const running: Running[] = [];
  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop();
    await engine?.close();
    await h?.close();
  });

  it("loads each version exactly once, in place, and reports it to the hub hook", async () => {
    h = await startHarness({ keep: 5 });
    engine = await engineStandIn();
    const s = await startSidecar(h, "e1", { kind: "sglang", url: engine.url });
    running.push(s);
    const m1 = await publish(h, 1);
    await serves(s, 1);
    s.sidecar.offer(m1); // a repeated announcement changes nothing
    await publish(h, 2);
    await serves(s, 2);
    await publish(h, 3);
    await serves(s, 3);
    const res = await h.service.engines.awaitAllServe(3, { timeoutMs: 5000 });
    expect(res.ok).to.equal(true);
    expect(engine.calls.map((c) => [c.path, c.body.model_path])).to.deep.equal(
      [1, 2, 3].map((v) => ["/update_weights_from_disk", join(s.root, "versions", String(v))]),
    );
    expect(await readlink(join(s.root, "current"))).to.equal(join(s.root, "versions", "3"));
    const index = JSON.parse(
      await readFile(join(s.root, "versions", "3", "model.safetensors.index.json"), "utf8"),
    );
    expect(Object.keys(index.weight_map as object)).to.include("layers.0.w");
    // Neither served nor previous: removed (right after the load).
    await until(() => !existsSync(join(s.root, "versions", "1")), "v1 removed");
    expect(existsSync(join(s.root, "versions", "2"))).to.equal(true);
    expect(await s.registry.metrics()).to.match(/l0_weights_version\{role="served"\} 3/);
    expect(await s.registry.metrics()).to.match(/l0_weights_sync_seconds_count 3/);
  });

  it("a service bulk port that does not answer is tried once, not once per version: the sidecar remembers it", async () => {
    let connections = 0;
    const silent = net.createServer((c) => (connections++, c.destroy())); // closes before answering
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
      h = await startHarness({ keep: 5, advertiseBulkPort: (silent.address() as net.AddressInfo).port });
      engine = await engineStandIn();
      const s = await startSidecar(h, "e1", { kind: "sglang", url: engine.url });
      running.push(s);
      for (const v of [1, 2, 3]) {
        await publish(h, v);
        await serves(s, v);
      }
      expect(connections).to.equal(1);
    } finally {
      await new Promise((r) => silent.close(r));
    }
  });

  it("local engine: an engine that restarted without its weights gets the served version loaded again", async () => {
    h = await startHarness({ keep: 5 });
    engine = await engineStandIn();
    const s = await startSidecar(h, "e1", { kind: "local", url: engine.url });
    running.push(s);
    await publish(h, 1);
    await serves(s, 1);
    await new Promise((r) => setTimeout(r, 500)); // checks while the engine serves v1: no reload
    expect(engine.calls).to.have.length(1);
    engine.restart();
    await until(() => engine.calls.length === 2, "v1 loaded again after the restart");
    expect(engine.calls.map((c) => [c.body.policy_version, c.body.model_path])).to.deep.equal([
      [1, join(s.root, "versions", "1")],
      [1, join(s.root, "versions", "1")],
    ]);
    // The next version loads as usual, once.
    await publish(h, 2);
    await serves(s, 2);
    await new Promise((r) => setTimeout(r, 500));
    expect(engine.calls.map((c) => c.body.policy_version)).to.deep.equal([1, 1, 2]);
  });

  it("waits for an engine that is not up yet (connection refused), then loads the version once", async () => {
    h = await startHarness({ keep: 5 });
    // A free port with nothing on it yet: the engine is still starting.
    const probe = await engineStandIn();
    const url = probe.url;
    await probe.close();
    const s = await startSidecar(h, "e1", { kind: "local", url });
    running.push(s);
    await publish(h, 1);
    await until(() => s.sidecar.status().state === "Syncing", "syncing v1");
    await new Promise((r) => setTimeout(r, 700)); // a few refused attempts
    expect(s.sidecar.status().state).to.equal("Syncing"); // waiting, not Degraded
    engine = await engineStandIn(undefined, Number(new URL(url).port));
    await serves(s, 1);
    expect(engine.calls.map((c) => c.body.policy_version)).to.deep.equal([1]);
  });

  it("a failing reload leaves the old version served, reports Degraded, and the next version loads", async () => {
    h = await startHarness({ keep: 5 });
    engine = await engineStandIn((c) => String(c.body.model_path).endsWith("/2"));
    const s = await startSidecar(h, "e1", { kind: "sglang", url: engine.url });
    running.push(s);
    await publish(h, 1);
    await serves(s, 1);
    await publish(h, 2);
    await until(() => s.sidecar.status().state === "Degraded", "Degraded");
    expect(s.sidecar.status()).to.include({ version: 1, targetVersion: 2 });
    expect(s.sidecar.status().detail).to.match(/engine load of v2 failed: .*out of memory while loading/);
    expect(await readlink(join(s.root, "current"))).to.equal(join(s.root, "versions", "1"));
    const wait = await h.service.engines.awaitAllServe(2, { timeoutMs: 5000 });
    expect(wait.ok).to.equal(false);
    if (!wait.ok) {
      expect(wait.reason).to.equal("EngineDegraded");
      expect(wait.message).to.match(/e1 \(serves v1, Degraded: engine load of v2 failed/);
    }
    await publish(h, 3);
    await serves(s, 3);
    // v2 was tried once and never again.
    expect(engine.calls.map((c) => String(c.body.model_path).split("/").pop())).to.deep.equal([
      "1",
      "2",
      "3",
    ]);
  });

  it("vLLM: reloads through /collective_rpc from the `current` link, and restores the previous version on failure", async () => {
    h = await startHarness({ keep: 5 });
    engine = await engineStandIn((_c, i) => i === 1); // the second reload (v2) fails
    const s = await startSidecar(h, "e1", { kind: "vllm", url: engine.url });
    running.push(s);
    await publish(h, 1);
    await serves(s, 1);
    await publish(h, 2);
    await until(() => s.sidecar.status().state === "Degraded", "Degraded");
    // v1 load, v2 load (failed), v1 reload to restore it.
    await until(() => engine.calls.length === 3, "restore reload");
    expect(engine.calls.map((c) => [c.path, c.body.method])).to.deep.equal(
      Array(3).fill(["/collective_rpc", "reload_weights"]),
    );
    expect(await readlink(join(s.root, "current"))).to.equal(join(s.root, "versions", "1"));
    expect(s.sidecar.status().version).to.equal(1);
  });

  for (const [title, bulk] of [
    ["over gRPC Pull", false],
    ["over the bulk channel", true],
  ] as const)
    it(`four sidecars with peer fan-out ${title} end with identical bytes; the trainer's service sends each byte once, not four times`, async () => {
      const grpcPulls: number[] = [];
      h = await startHarness({
        fanout: 2,
        keep: 5,
        ...(bulk ? { bulk: {} } : {}),
        wrap: (handlers) => {
          const pull = handlers.pull as (c: { request: { offset: unknown } }) => void;
          handlers.pull = (c: { request: { offset: unknown } }) => (
            grpcPulls.push(Number(c.request.offset)),
            pull(c)
          );
        },
      });
      engine = await engineStandIn();
      for (const id of ["a", "b", "c", "d"])
        running.push(
          await startSidecar(h, id, { kind: "sglang", url: engine.url }, { servePeers: true, bulk }),
        );
      const m = await publish(h, 1, { shards: 3, elements: 128 * 1024, chunkBytes: 128 * 1024 });
      for (const r of running) await serves(r, 1);
      for (const r of running)
        for (const sh of m.shards)
          expect(await sha256File(join(r.root, "versions", "1", sh.file))).to.equal(sh.sha256);
      const total = m.shards.reduce((a, sh) => a + sh.sizeBytes, 0);
      const sentBy = async (text: Promise<string>) =>
        Number(/l0_weights_bytes_total\{direction="sent"\} (\d+)/.exec(await text)?.[1] ?? 0);
      // trainer_egress_ratio_4 = 1: the trainer pod's egress is one copy of the model.
      expect(await sentBy(h.registry.metrics())).to.equal(total);
      let peerSent = 0;
      for (const r of running) peerSent += await sentBy(r.registry.metrics());
      expect(peerSent).to.equal(3 * total);
      const res = await h.service.engines.awaitAllServe(1, { timeoutMs: 5000, minEngines: 4 });
      expect(res.ok).to.equal(true);
      // The bytes took the advertised transport: bulk from the service and between peers, or Pull.
      const relayedOverBulk = running.reduce((a, r) => a + r.bulkSent.length, 0);
      if (bulk) {
        expect(grpcPulls).to.deep.equal([]);
        expect(relayedOverBulk).to.equal(3 * m.shards.length);
      } else {
        expect(grpcPulls).to.have.length(m.shards.length);
        expect(relayedOverBulk).to.equal(0);
      }
    });
});
