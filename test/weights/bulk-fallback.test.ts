// When `--transport auto` leaves the bulk channel (lib/weights/bulk.ts) for gRPC Pull, and when it
// does not: an error the bulk server answers is handled by its kind (a retry, over bulk), a bulk
// port that never answers sends the next attempts at the same source over Pull (a peer stays the
// source), and that is remembered across versions for a while (images/inference/puller.ts).
import net from "node:net";
import { cp, rm } from "node:fs/promises";
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { L0Error } from "../../lib/errors.js";
import { silentLogger } from "../../lib/log.js";
import { type l0 } from "../../lib/proto.js";
import { tlsFromSecretData } from "../../lib/tls.js";
import { bulkPull, startBulkServer } from "../../lib/weights/bulk.js";
import { BULK_RETRY_MS, tryBulkPort, UnansweredBulkPorts } from "../../lib/weights/bulk-ports.js";
import { issueRunTls } from "../../operator/run-tls.js";
import { type RangeSource } from "../../lib/weights/stream.js";
import { type PullSource, pullVersion } from "../../images/inference/puller.js";
import { sha256File, tempDir, writeVersion } from "./fixtures.js";
import { type Harness, startHarness, TOKEN } from "./harness.js";

type PullCall = grpc.ServerWritableStream<l0.v1.PullRequest, l0.v1.IWeightPiece>;

/** A harness that counts the ranges asked over each transport; `fail` answers the first n bulk asks. */
async function counted(fail?: { times: number; error: () => L0Error }) {
  const calls = { bulk: 0, grpc: 0 };
  const h = await startHarness({
    bulk: {
      wrap: (source: RangeSource): RangeSource => ({
        serveRange: async (req, out) => {
          calls.bulk++;
          if (fail && calls.bulk <= fail.times) throw fail.error();
          return source.serveRange(req, out);
        },
      }),
    },
    wrap: (handlers) => {
      const pull = handlers.pull as (c: PullCall) => void;
      handlers.pull = (c: PullCall) => (calls.grpc++, pull(c));
    },
  });
  return { h, calls };
}

/** A loopback server that accepts connections, counts them, and `then` does what it says. */
async function silentPort(then: "close" | "hold") {
  const held: net.Socket[] = [];
  const s = net.createServer((c) => {
    c.on("error", () => undefined);
    c.on("data", () => undefined);
    if (then === "close") c.destroy();
    else held.push(c);
  });
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return {
    address: `127.0.0.1:${(s.address() as net.AddressInfo).port}`,
    server: s,
    close: () => {
      for (const c of held) c.destroy();
      return new Promise((r) => s.close(r));
    },
  };
}

/** host:port of a loopback port nothing listens on (connections are refused). */
async function refusedPort(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return `127.0.0.1:${port}`;
}

const source = (h: Harness, label: string, bulk = h.bulkAddress): PullSource => ({
  client: h.client,
  label,
  bulk,
});

describe("weights: when auto leaves the bulk channel", function () {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });
  const dir = async () => {
    const d = await tempDir("l0-bulk-fallback-");
    closers.push(() => rm(d, { recursive: true, force: true }));
    return d;
  };

  it("an error the bulk server answers is an answer: answered, its kind kept", async () => {
    const srv = await startBulkServer({
      source: { serveRange: () => Promise.reject(new L0Error("Unavailable", "transient: disk hiccup")) },
      token: TOKEN,
      logger: silentLogger(),
      host: "127.0.0.1",
      port: 0,
    });
    closers.push(() => srv.close());
    const st = bulkPull(
      `127.0.0.1:${srv.port}`,
      { version: 1, shard: "a", offset: 0, puller: "p" },
      { token: TOKEN },
    );
    const err = await (async () => {
      for await (const _ of st.pieces);
    })().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(L0Error);
    expect((err as L0Error).kind).to.equal("Unavailable");
    expect((err as L0Error).message).to.equal("transient: disk hiccup");
    expect(st.answered).to.equal(true);
  });

  it("retries an answered Unavailable over bulk, not over gRPC Pull", async () => {
    const { h, calls } = await counted({ times: 1, error: () => new L0Error("Unavailable", "busy") });
    closers.push(() => h.close());
    const m = await writeVersion(h.dir, 1, { shards: 1, elements: 64 * 1024, chunkBytes: 64 * 1024 });
    await h.store.scan();
    const to = await dir();
    await pullVersion({
      manifest: m,
      dir: to,
      primary: source(h, "service"),
      token: TOKEN,
      pullerId: "t",
      metrics: h.metrics,
      logger: silentLogger(),
    });
    expect(await sha256File(join(to, m.shards[0]!.file))).to.equal(
      await sha256File(join(h.dir, "1", m.shards[0]!.file)),
    );
    expect(calls).to.deep.equal({ bulk: 2, grpc: 0 });
  });

  it("a peer whose bulk port is refused stays the source, over its gRPC Pull; the service is not asked", async () => {
    const peer = await counted();
    closers.push(() => peer.h.close());
    const service = await counted();
    closers.push(() => service.h.close());
    const m = await writeVersion(peer.h.dir, 1, { shards: 2, elements: 64 * 1024, chunkBytes: 64 * 1024 });
    await cp(join(peer.h.dir, "1"), join(service.h.dir, "1"), { recursive: true });
    await peer.h.store.scan();
    await service.h.store.scan();
    const to = await dir();
    await pullVersion({
      manifest: m,
      dir: to,
      primary: source(peer.h, "peer", await refusedPort()),
      fallback: source(service.h, "service"),
      token: TOKEN,
      pullerId: "t",
      metrics: service.h.metrics,
      logger: silentLogger(),
    });
    for (const s of m.shards)
      expect(await sha256File(join(to, s.file))).to.equal(await sha256File(join(peer.h.dir, "1", s.file)));
    expect(peer.calls).to.deep.equal({ bulk: 0, grpc: 2 });
    expect(service.calls).to.deep.equal({ bulk: 0, grpc: 0 });
    expect(await service.h.registry.metrics()).to.match(/l0_weights_chunk_retries_total 0\b/);
  });

  it("gives up on a bulk port that connects no further within the connect deadline (TLS handshake unanswered)", async () => {
    const run = tlsFromSecretData(await issueRunTls({ run: "ml/r1", dnsNames: [], now: new Date() }))!;
    const port = await silentPort("hold"); // takes the TCP connection, never answers the handshake
    closers.push(port.close);
    const st = bulkPull(
      port.address,
      { version: 1, shard: "a", offset: 0, puller: "p" },
      { token: TOKEN, tls: run, connectTimeoutMs: 50 },
    );
    const err = await (async () => {
      for await (const _ of st.pieces);
    })().catch((e: unknown) => e);
    expect((err as L0Error).kind).to.equal("Unavailable");
    expect((err as L0Error).message).to.match(/not connected within 50 ms/);
    expect(st.answered).to.equal(false);
  });

  it("retries a silent bulk port only once its retry period has passed", () => {
    const retry = 60_000;
    const cases: [number | undefined, number, boolean][] = [
      [undefined, 0, true], // never failed
      [1000, 1000, false], // just failed
      [1000, 1000 + retry - 1, false],
      [1000, 1000 + retry, true], // the period is over: try it again
      [1000, 1000 + 10 * retry, true],
    ];
    for (const [failedAt, now, want] of cases)
      expect(tryBulkPort(failedAt, now, retry), `${failedAt} ${now}`).to.equal(want);
  });

  it("remembers a bulk port that did not answer across versions, and tries it again after BULK_RETRY_MS", async () => {
    const { h, calls } = await counted();
    closers.push(() => h.close());
    const port = await silentPort("close"); // accepts, closes before any answer
    closers.push(port.close);
    let connections = 0;
    port.server.on("connection", () => connections++);
    let now = 1_000_000;
    const unanswered = new UnansweredBulkPorts({ now: () => now });
    const pull = async (v: number) => {
      const m = await writeVersion(h.dir, v, { shards: 2, elements: 16 * 1024, chunkBytes: 64 * 1024 });
      await h.store.scan();
      await pullVersion({
        manifest: m,
        dir: await dir(),
        primary: source(h, "service", port.address),
        token: TOKEN,
        pullerId: "t",
        metrics: h.metrics,
        logger: silentLogger(),
        unanswered,
      });
    };
    await pull(1);
    expect([connections, calls.grpc]).to.deep.equal([1, 2]); // shard 1 tried bulk once, both over Pull
    now += BULK_RETRY_MS - 1;
    await pull(2);
    expect([connections, calls.grpc]).to.deep.equal([1, 4]); // not tried again
    now += 1;
    await pull(3);
    expect([connections, calls.grpc]).to.deep.equal([2, 6]); // tried once more, still silent
    expect(calls.bulk).to.equal(0);
  });
});
