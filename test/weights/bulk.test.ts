// The bulk channel (lib/weights/bulk.ts) over real sockets on loopback and real files: a pull
// over it verifies every chunk, resumes after a cut from the first unverified chunk, re-pulls a
// corrupted chunk, refuses clients without the run's certificate when TLS is on, answers bad
// requests with one clear line while it keeps serving, and `auto` falls back to gRPC Pull when
// the bulk port does not answer.
import net from "node:net";
import tls from "node:tls";
import { join } from "node:path";
import { rm } from "node:fs/promises";
import type * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { L0Error } from "../../lib/errors.js";
import { silentLogger } from "../../lib/log.js";
import { type l0 } from "../../lib/proto.js";
import { type RunTls, tlsConnectOptions, tlsFromSecretData } from "../../lib/tls.js";
import { bulkAt, MAX_REQUEST_BYTES, parseRequest } from "../../lib/weights/bulk.js";
import { type Manifest } from "../../lib/weights/manifest.js";
import { type PieceOut, type RangeSource } from "../../lib/weights/stream.js";
import { issueRunTls } from "../../operator/run-tls.js";
import { bulkAddress, type PullSource, pullVersion, type Transport } from "../../images/inference/puller.js";
import { cuttingProxy, sha256File, tempDir, writeVersion } from "./fixtures.js";
import { type Harness, type HarnessBulk, startHarness, TOKEN } from "./harness.js";

type PullCall = grpc.ServerWritableStream<l0.v1.PullRequest, l0.v1.IWeightPiece>;
type PullOptions = Parameters<typeof pullVersion>[0];

/** A bulk source that records the offsets asked for (and may tamper with what it sends). */
function watched(offsets: number[], tamper?: (out: PieceOut, call: number) => PieceOut) {
  return (source: RangeSource): RangeSource => ({
    serveRange: (req, out) => {
      offsets.push(Number(req.offset));
      return source.serveRange(req, tamper ? tamper(out, offsets.length) : out);
    },
  });
}

interface Setup {
  h: Harness;
  /** Offsets the bulk channel was asked for. */
  bulkOffsets: number[];
  /** Offsets gRPC Pull was asked for. */
  grpcOffsets: number[];
}

async function setup(bulk: HarnessBulk = {}, tamper?: (out: PieceOut, call: number) => PieceOut) {
  const bulkOffsets: number[] = [];
  const grpcOffsets: number[] = [];
  const h = await startHarness({
    bulk: { ...bulk, wrap: watched(bulkOffsets, tamper) },
    wrap: (handlers) => {
      const pull = handlers.pull as (c: PullCall) => void;
      handlers.pull = (c: PullCall) => (grpcOffsets.push(Number(c.request.offset)), pull(c));
    },
  });
  return { h, bulkOffsets, grpcOffsets } satisfies Setup;
}

function pullOptions(h: Harness, m: Manifest, dir: string, extra: Partial<PullOptions> = {}): PullOptions {
  return {
    manifest: m,
    dir,
    primary: { client: h.client, label: "service", bulk: h.bulkAddress },
    token: TOKEN,
    pullerId: "t",
    metrics: h.metrics,
    logger: silentLogger(),
    ...extra,
  };
}

async function expectSameFiles(m: Manifest, a: string, b: string): Promise<void> {
  for (const s of m.shards)
    expect(await sha256File(join(a, s.file)), s.file).to.equal(await sha256File(join(b, s.file)));
}

/** Sends `request` raw to a bulk port and returns everything it answers until it closes. */
function rawExchange(address: string, request: Buffer | string, o: { tls?: tls.ConnectionOptions } = {}) {
  const [host, port] = address.split(":");
  return new Promise<{ text: string; error: string }>((resolve) => {
    const sock = o.tls
      ? tls.connect({ host, port: Number(port), ...o.tls })
      : net.connect({ host: host!, port: Number(port) });
    let text = "";
    let error = "";
    sock.on("data", (d: Buffer) => (text += d.toString("latin1")));
    sock.on("error", (e) => (error = e.message));
    sock.on("close", () => resolve({ text, error }));
    sock.write(request);
  });
}

const request = (o: Record<string, unknown>) =>
  JSON.stringify({ v: 1, authorization: `Bearer ${TOKEN}`, version: 1, offset: 0, ...o }) + "\n";

describe("weights: bulk channel", function () {
  let s: Setup | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await s?.h.close();
    s = undefined;
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  const pulled = async () => {
    const d = await tempDir("l0-bulk-pulled-");
    dirs.push(d);
    return d;
  };

  it("auto pulls over the bulk channel: byte-identical shards, bytes counted, no Pull call", async () => {
    s = await setup();
    const m = await writeVersion(s.h.dir, 1, { shards: 3, elements: 96 * 1024, chunkBytes: 100_000 });
    await s.h.store.scan();
    const dir = await pulled();
    await pullVersion(pullOptions(s.h, m, dir, { streams: 2 }));
    await expectSameFiles(m, join(s.h.dir, "1"), dir);
    expect(s.bulkOffsets).to.deep.equal([0, 0, 0]);
    expect(s.grpcOffsets).to.deep.equal([]);
    const total = m.shards.reduce((a, sh) => a + sh.sizeBytes, 0);
    const metrics = await s.h.registry.metrics();
    expect(metrics).to.contain(`l0_weights_bytes_total{direction="sent"} ${total}`);
    expect(metrics).to.contain(`l0_weights_bytes_total{direction="received"} ${total}`);
  });

  it("a cut mid-shard resumes over bulk from the first unverified chunk, not from zero", async () => {
    s = await setup();
    const chunk = 256 * 1024;
    const m = await writeVersion(s.h.dir, 1, { shards: 1, elements: 512 * 1024, chunkBytes: chunk });
    await s.h.store.scan();
    const [host, port] = s.h.bulkAddress.split(":");
    const proxy = await cuttingProxy({ host: host!, port: Number(port) }, 1_200_000);
    try {
      const dir = await pulled();
      const primary: PullSource = { client: s.h.client, label: "service", bulk: proxy.address };
      await pullVersion(pullOptions(s.h, m, dir, { primary, transport: "bulk" }));
      await expectSameFiles(m, join(s.h.dir, "1"), dir);
    } finally {
      await proxy.close();
    }
    expect(s.bulkOffsets).to.have.length(2);
    expect(s.bulkOffsets[0]).to.equal(0);
    // Everything verified before the cut (at least 1.2 MB less a chunk in flight) is kept.
    expect(s.bulkOffsets[1]! % chunk).to.equal(0);
    expect(s.bulkOffsets[1]).to.be.at.least(1_200_000 - 2 * chunk);
    expect(s.grpcOffsets).to.deep.equal([]);
    expect(await s.h.registry.metrics()).to.match(/l0_weights_chunk_retries_total 1\b/);
  });

  it("a corrupted byte is caught by its chunk's sha256 and that chunk is pulled again", async () => {
    const chunk = 128 * 1024;
    // The first connection flips one byte at offset 3 * chunk + 5 (in the fourth chunk).
    s = await setup({}, (out, call) =>
      call !== 1
        ? out
        : {
            ...out,
            gone: out.gone,
            write: (offset, data, done) => {
              const at = 3 * chunk + 5 - offset;
              if (at >= 0 && at < data.length) data[at] = data[at]! ^ 0xff;
              return out.write(offset, data, done);
            },
          },
    );
    const m = await writeVersion(s.h.dir, 1, { shards: 1, elements: 512 * 1024, chunkBytes: chunk });
    await s.h.store.scan();
    const dir = await pulled();
    await pullVersion(pullOptions(s.h, m, dir, { transport: "bulk" }));
    await expectSameFiles(m, join(s.h.dir, "1"), dir);
    expect(s.bulkOffsets).to.deep.equal([0, 3 * chunk]);
    expect(await s.h.registry.metrics()).to.match(/l0_weights_chunk_retries_total 1\b/);
  });

  describe("with the run's mutual TLS", () => {
    let run: RunTls;
    let other: RunTls;
    before(async () => {
      run = tlsFromSecretData(await issueRunTls({ run: "ml/r1", dnsNames: [], now: new Date() }))!;
      other = tlsFromSecretData(await issueRunTls({ run: "ml/r2", dnsNames: [], now: new Date() }))!;
    });

    it("refuses a client without a certificate of the run's CA before it reads a request; the run's own pulls", async () => {
      s = await setup({ tls: run });
      const m = await writeVersion(s.h.dir, 1, { shards: 1, elements: 64 * 1024, chunkBytes: 64 * 1024 });
      await s.h.store.scan();
      const shard = m.shards[0]!.file;
      const cases: [string, tls.ConnectionOptions | undefined][] = [
        ["plaintext", undefined],
        ["the CA but no certificate", { ca: run.ca, servername: "l0-run" }],
        ["another run's certificate", { ...tlsConnectOptions(other), ca: run.ca }],
      ];
      for (const [name, opts] of cases) {
        const r = await rawExchange(s.h.bulkAddress, request({ shard }), { tls: opts });
        expect(r.text, name).to.not.contain('"ok"');
        expect(r.text, name).to.not.contain("Unauthenticated"); // refused before the request
      }
      expect(s.bulkOffsets).to.deep.equal([]);
      expect(await s.h.registry.metrics()).to.not.match(/direction="sent"\} [1-9]/);
      const dir = await pulled();
      await pullVersion(pullOptions(s.h, m, dir, { transport: "bulk", tls: run }));
      await expectSameFiles(m, join(s.h.dir, "1"), dir);
    });
  });

  it("answers a bad request with one clear error line and keeps serving", async () => {
    s = await setup();
    const m = await writeVersion(s.h.dir, 1, { shards: 1, elements: 64 * 1024, chunkBytes: 64 * 1024 });
    await s.h.store.scan();
    const shard = m.shards[0]!.file;
    const size = m.shards[0]!.sizeBytes;
    const cases: [string, string | Buffer, string, RegExp][] = [
      [
        "oversized",
        Buffer.alloc(MAX_REQUEST_BYTES + 100, 0x7b),
        "InvalidArgument",
        /^request: longer than 4096/,
      ],
      ["not JSON", "GET / HTTP/1.1\n", "InvalidArgument", /^request: is not JSON/],
      ["another protocol", request({ v: 2, shard }), "InvalidArgument", /^v: must be 1, got 2/],
      [
        "negative offset",
        request({ shard, offset: -1 }),
        "InvalidArgument",
        /^offset: must be a non-negative/,
      ],
      ["no token", request({ shard, authorization: "" }), "Unauthenticated", /wrong run token/],
      ["unknown shard", request({ shard: "nope" }), "NotFound", /has no shard "nope"/],
      [
        "offset past the end",
        request({ shard, offset: size + 1 }),
        "InvalidArgument",
        /^offset: .* past the end/,
      ],
      ["unknown version", request({ shard, version: 9 }), "NotFound", /9/],
    ];
    for (const [name, req, kind, message] of cases) {
      const r = await rawExchange(s.h.bulkAddress, req);
      const lines = r.text.split("\n").filter(Boolean);
      expect(lines, name).to.have.length(1);
      const answer = JSON.parse(lines[0]!) as { error: { kind: string; message: string } };
      expect(answer.error.kind, name).to.equal(kind);
      expect(answer.error.message, name).to.match(message);
    }
    const dir = await pulled();
    await pullVersion(pullOptions(s.h, m, dir, { transport: "bulk" }));
    await expectSameFiles(m, join(s.h.dir, "1"), dir);
  });

  it("auto falls back to gRPC Pull when the bulk port does not answer; `bulk` fails where none is advertised", async () => {
    s = await setup();
    const m = await writeVersion(s.h.dir, 1, { shards: 2, elements: 64 * 1024, chunkBytes: 64 * 1024 });
    await s.h.store.scan();
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const dead = `127.0.0.1:${(closed.address() as net.AddressInfo).port}`;
    await new Promise((r) => closed.close(r));
    const dir = await pulled();
    const primary: PullSource = { client: s.h.client, label: "service", bulk: dead };
    await pullVersion(pullOptions(s.h, m, dir, { primary }));
    await expectSameFiles(m, join(s.h.dir, "1"), dir);
    expect(s.grpcOffsets).to.have.length(2);
    const err = await pullVersion(
      pullOptions(s.h, m, await pulled(), {
        primary: { client: s.h.client, label: "service" },
        transport: "bulk",
      }),
    ).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(L0Error);
    expect((err as L0Error).message).to.match(/transport bulk: service advertises no bulk port/);
  });

  it("picks the transport per source: auto takes bulk where advertised and not failed, grpc never, bulk only", () => {
    const withBulk = { label: "service", bulk: "h:7073" } as PullSource;
    const without = { label: "peer-a" } as PullSource;
    const failed = new Set(["h:7073"]);
    const cases: [Transport, PullSource, ReadonlySet<string>, string | null | RegExp][] = [
      ["auto", withBulk, new Set(), "h:7073"],
      ["auto", without, new Set(), null],
      ["auto", withBulk, failed, null], // its bulk port did not answer: Pull from now on
      ["grpc", withBulk, new Set(), null],
      ["bulk", withBulk, failed, "h:7073"], // bulk only: never falls back
      ["bulk", without, new Set(), /transport bulk: peer-a advertises no bulk port/],
    ];
    for (const [transport, source, noBulk, want] of cases) {
      const name = `${transport} ${source.label} ${noBulk.size}`;
      if (want instanceof RegExp) expect(() => bulkAddress(transport, source, noBulk), name).to.throw(want);
      else expect(bulkAddress(transport, source, noBulk), name).to.equal(want);
    }
  });

  it("parses requests strictly", () => {
    expect(parseRequest(request({ shard: "a" }).trim())).to.deep.equal({
      authorization: `Bearer ${TOKEN}`,
      version: 1,
      shard: "a",
      offset: 0,
      puller: "",
    });
    const bad: [string, RegExp][] = [
      ["[]", /^request: must be a JSON object/],
      [request({ shard: "a", version: 0 }), /^version: must be a positive integer/],
      [request({ shard: "a", version: "1" }), /^version: must be a positive integer/],
      [request({ shard: "" }), /^shard: must be a non-empty string/],
      [request({ shard: "a", offset: 1.5 }), /^offset: must be a non-negative integer/],
      [request({ shard: "a", authorization: 7 }), /^authorization: must be a string/],
    ];
    for (const [line, msg] of bad) expect(() => parseRequest(line.trim()), line).to.throw(msg);
  });

  it("places bulk ports on the source's host; no bulk (gRPC) for an address it cannot parse", () => {
    const cases: [string | undefined, number, string | undefined][] = [
      ["qa-hub:7071", 7073, "qa-hub:7073"],
      ["10.0.0.7:7072", 7074, "10.0.0.7:7074"],
      ["[fd00::1]:7072", 7074, "[fd00::1]:7074"],
      ["qa-hub:7071", 0, undefined], // the source advertises none
      [undefined, 7073, undefined],
      ["", 7073, undefined],
      // What gRPC may still dial, but is not host:port: a peer's address without its port, a
      // portless --weights-address, a gRPC target with a scheme, a bare IPv6 address.
      ["qa-hub", 7073, undefined],
      ["qa-hub:", 7073, undefined],
      [":7071", 7073, undefined],
      ["dns:///qa-hub:7071", 7073, undefined],
      ["fd00::1", 7074, undefined],
      ["[fd00::1]", 7074, undefined],
    ];
    for (const [address, port, want] of cases)
      expect(bulkAt(address, port), `${address} ${port}`).to.equal(want);
  });
});
