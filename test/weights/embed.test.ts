// The embedded weight service as the trainer's loop uses it: publish(v) after an export resolves
// once the engines serve v, and fails with a reason (never hangs) when they do not.
import { rm } from "node:fs/promises";
import { connect } from "node:net";
import { expect } from "chai";
import { type L0Error } from "../../lib/errors.js";
import { silentLogger } from "../../lib/log.js";
import { type RunTls, tlsFromSecretData } from "../../lib/tls.js";
import { issueRunTls } from "../../operator/run-tls.js";
import { createRegistry } from "../../lib/metrics.js";
import { startWeightService, type EmbeddedWeights } from "../../images/trainer/weights/embed.js";
import { weightsMetrics } from "../../lib/weights/metrics.js";
import { createEngine } from "../../images/inference/engines.js";
import { PeerStore } from "../../images/inference/peer.js";
import { weightsClient } from "../../images/inference/puller.js";
import { Sidecar } from "../../images/inference/sidecar.js";
import { engineStandIn, tempDir, writeVersion } from "./fixtures.js";

describe("weights: embedded service and publish", () => {
  let w: EmbeddedWeights;
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  /** The weight service on a fresh export dir (and a sidecar root beside it); `w` is set. */
  async function service(tls?: RunTls): Promise<{ dir: string; root: string }> {
    const dir = await tempDir();
    const root = await tempDir("l0-embed-root-");
    cleanup.push(
      () => rm(dir, { recursive: true, force: true }),
      () => rm(root, { recursive: true, force: true }),
    );
    w = await startWeightService({
      dir,
      token: "t",
      logger: silentLogger(),
      registry: createRegistry({ defaultMetrics: false }),
      host: "127.0.0.1",
      port: 0,
      bulkPort: 0,
      pollIntervalMs: 60_000,
      tls,
    });
    cleanup.push(() => w.close());
    return { dir, root };
  }

  /**
   * A sidecar "e1" syncing from `w` into `root` for an engine that refuses what `refuse` says; its
   * bytes only over the bulk channel `Plan` tells it of (`--transport bulk`).
   */
  async function sidecar(root: string, refuse: (path: string) => boolean, tls?: RunTls): Promise<void> {
    const engine = await engineStandIn((c) => refuse(String(c.body.model_path)));
    cleanup.push(() => engine.close());
    const client = weightsClient(w.address, tls);
    const abort = new AbortController();
    const running = new Sidecar({
      engineId: "e1",
      root,
      service: client,
      clientFor: (address) => weightsClient(address, tls),
      serviceAddress: w.address,
      pull: { transport: "bulk", tls },
      token: "t",
      engine: createEngine({ kind: "sglang", url: engine.url }),
      peers: new PeerStore(),
      logger: silentLogger(),
      metrics: weightsMetrics(createRegistry({ defaultMetrics: false })),
      reportIntervalMs: 100,
    }).run(abort.signal);
    cleanup.push(async () => {
      abort.abort();
      await running;
      client.close();
    });
  }

  const serving = () => w.engines.engines().map((e) => [e.engineId, e.version, e.state]);

  it("publish(v) resolves when the engines serve v, and names the reason when they cannot", async () => {
    const { dir, root } = await service();
    const missing = await w.publish(1, { timeoutMs: 1000, minEngines: 1 }).catch((e: L0Error) => e);
    expect((missing as L0Error).reason).to.equal("WeightExportMissing");

    await writeVersion(dir, 1);
    const nobody = await w.publish(1, { timeoutMs: 50, minEngines: 1 }).catch((e: L0Error) => e);
    expect((nobody as L0Error).reason).to.equal("WeightSyncTimeout");
    expect((nobody as L0Error).message).to.match(/0 of 1 engines reported/);

    await sidecar(root, (path) => path.endsWith("/2"));
    await w.publish(1, { timeoutMs: 10_000, minEngines: 1 });
    expect(serving()).to.deep.equal([["e1", 1, "Serving"]]);

    await writeVersion(dir, 2); // the engine refuses v2
    const degraded = await w.publish(2, { timeoutMs: 10_000, minEngines: 1 }).catch((e: L0Error) => e);
    expect((degraded as L0Error).reason).to.equal("EngineDegraded");
    expect((degraded as L0Error).message).to.match(/e1 \(serves v1, Degraded: engine load of v2 failed/);
  });

  it("over the run's mutual TLS: a sidecar of the run syncs, a plaintext client is refused", async () => {
    const tls = tlsFromSecretData(await issueRunTls({ run: "ns/r", dnsNames: [], now: new Date() }))!;
    const { dir, root } = await service(tls);
    await writeVersion(dir, 1);
    const plain = weightsClient(w.address);
    cleanup.push(async () => plain.close());
    const ready = await new Promise<boolean>((resolve) =>
      plain.waitForReady(Date.now() + 3000, (err) => resolve(!err)),
    );
    expect(ready, "a plaintext client connected").to.equal(false);
    // Nor does the bulk channel answer one (the handshake fails before any request is read).
    const answer = await new Promise<string>((resolve) => {
      const sock = connect(w.bulkPort, "127.0.0.1");
      let got = "";
      sock.on("data", (d: Buffer) => (got += d.toString("latin1")));
      sock.on("error", () => undefined);
      sock.on("close", () => resolve(got));
      sock.write(
        JSON.stringify({ v: 1, authorization: "Bearer t", version: 1, shard: "x", offset: 0 }) + "\n",
      );
    });
    expect(answer).to.not.match(/"ok"|"error"/);
    await sidecar(root, () => false, tls);
    await w.publish(1, { timeoutMs: 10_000, minEngines: 1 });
    expect(serving()).to.deep.equal([["e1", 1, "Serving"]]);
  });
});
