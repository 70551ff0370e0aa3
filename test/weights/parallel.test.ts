// Pulls that use every core: several shards on parallel Pull streams, chunks hashed and written
// by worker threads (HashPool). Same guarantees as the one-stream pull: byte-identical files, a
// bad chunk fetched again, resume from what is on disk, memory bounded by the pool's slots.
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { silentLogger } from "../../lib/log.js";
import { type l0 } from "../../lib/proto.js";
import { HashPool, defaultThreads } from "../../lib/weights/hash-pool.js";
import { type Manifest } from "../../lib/weights/manifest.js";
import { pullVersion } from "../../images/inference/puller.js";
import { sha256File, tempDir, writeVersion } from "./fixtures.js";
import { type Harness, startHarness, TOKEN } from "./harness.js";

type PullCall = grpc.ServerWritableStream<l0.v1.PullRequest, l0.v1.IWeightPiece>;

async function expectSameFiles(m: Manifest, a: string, b: string): Promise<void> {
  for (const s of m.shards)
    expect(await sha256File(join(b, s.file)), s.file).to.equal(await sha256File(join(a, s.file)));
}

/**
 * A harness whose Pull handler records each request and holds the first ones until `hold` streams
 * are open at once (or 3 s pass: a sequential puller then fails the concurrency assertion).
 */
async function recordingHarness(hold = 1, corruptPiece = 0) {
  const seen: { shard: string; offset: number }[] = [];
  let open = 0;
  let maxOpen = 0;
  const waiting: (() => void)[] = [];
  let corrupted = false;
  const h = await startHarness({
    keep: 5,
    wrap: (handlers) => {
      const pull = handlers.pull as (c: PullCall) => void;
      handlers.pull = (c: PullCall) => {
        seen.push({ shard: c.request.shard, offset: Number(c.request.offset) });
        maxOpen = Math.max(maxOpen, ++open);
        let closed = false;
        const close = () => (closed ? undefined : ((closed = true), open--));
        c.once("finish", close);
        c.once("cancelled", close);
        if (corruptPiece > 0) {
          const write = c.write.bind(c);
          let n = 0;
          c.write = ((piece: l0.v1.IWeightPiece, cb?: (err?: Error | null) => void) => {
            if (corrupted || ++n !== corruptPiece) return write(piece, cb);
            corrupted = true;
            const data = Buffer.from(piece.data!);
            data[10] = data[10]! ^ 0xff;
            return write({ ...piece, data }, cb);
          }) as typeof c.write;
        }
        if (open >= hold) for (const w of waiting.splice(0)) w();
        if (open >= hold) return pull(c);
        const t = setTimeout(() => waiting.splice(0).forEach((w) => w()), 3000);
        waiting.push(() => (clearTimeout(t), pull(c)));
      };
    },
  });
  return { h, seen, maxOpen: () => maxOpen, corrupted: () => corrupted };
}

describe("weights: parallel streams and hashing threads", function () {
  let h: Harness | undefined;
  let pool: HashPool | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await pool?.close();
    await h?.close();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  const pull = async (m: Manifest, extra: Partial<Parameters<typeof pullVersion>[0]> = {}) => {
    const dir = await tempDir("l0-pulled-");
    dirs.push(dir);
    await pullVersion({
      manifest: m,
      dir,
      primary: { client: h!.client, label: "service" },
      token: TOKEN,
      pullerId: "t",
      metrics: h!.metrics,
      logger: silentLogger(),
      ...extra,
    });
    return dir;
  };

  it("3 streams with 2 hashing threads: shards pulled at once, byte-identical, pieces straddling chunks", async () => {
    const r = await recordingHarness(3);
    h = r.h;
    const m = await writeVersion(h.dir, 1, { shards: 4, elements: 96 * 1024, chunkBytes: 100_000 });
    await h.store.scan();
    pool = new HashPool(2);
    const dir = await pull(m, { streams: 3, hashPool: pool, pieceBytes: 48 * 1024 });
    await expectSameFiles(m, join(h.dir, "1"), dir);
    expect(r.maxOpen()).to.equal(3);
    expect(r.seen.map((s) => s.shard).sort()).to.deep.equal(m.shards.map((s) => s.file).sort());
    expect(await h.registry.metrics()).to.match(/l0_weights_chunk_retries_total 0/);
  });

  it("a chunk corrupted on the wire is caught by a hashing thread and fetched again from its start", async () => {
    const r = await recordingHarness(1, 3);
    h = r.h;
    const m = await writeVersion(h.dir, 1, { shards: 2, elements: 256 * 1024, chunkBytes: 128 * 1024 });
    await h.store.scan();
    pool = new HashPool(2);
    const dir = await pull(m, { streams: 2, hashPool: pool, pieceBytes: 64 * 1024 });
    await expectSameFiles(m, join(h.dir, "1"), dir);
    expect(r.corrupted()).to.equal(true);
    // Piece 3 lies in chunk 1 (bytes 128 Ki..256 Ki) of the shard it hit: the re-pull starts there.
    expect(r.seen.filter((s) => s.offset > 0).map((s) => s.offset)).to.deep.equal([128 * 1024]);
    expect(await h.registry.metrics()).to.match(/l0_weights_chunk_retries_total 1/);
  });

  it("resumes each shard from what an interrupted pull left on disk", async () => {
    const r = await recordingHarness();
    h = r.h;
    const m = await writeVersion(h.dir, 1, { shards: 2, elements: 256 * 1024, chunkBytes: 128 * 1024 });
    await h.store.scan();
    const dir = await tempDir("l0-pulled-");
    dirs.push(dir);
    const [a, b] = m.shards.map((s) => s.file) as [string, string];
    await writeFile(join(dir, a), (await readFile(join(h.dir, "1", a))).subarray(0, 2 * 128 * 1024));
    pool = new HashPool(2);
    await pullVersion({
      manifest: m,
      dir,
      primary: { client: h.client, label: "service" },
      token: TOKEN,
      pullerId: "t",
      metrics: h.metrics,
      logger: silentLogger(),
      streams: 2,
      hashPool: pool,
      resume: true,
    });
    await expectSameFiles(m, join(h.dir, "1"), dir);
    const from = Object.fromEntries(r.seen.map((s) => [s.shard, s.offset]));
    expect(from).to.deep.equal({ [a]: 2 * 128 * 1024, [b]: 0 });
  });

  it("a shard that cannot be pulled fails the whole pull with its own error, and stops the other streams", async () => {
    const r = await recordingHarness();
    h = r.h;
    const m = await writeVersion(h.dir, 1, { shards: 3 });
    await h.store.scan();
    const bad = { ...m, shards: [...m.shards, { ...m.shards[0]!, file: "missing.safetensors" }] };
    const err = await pull(bad, { streams: 2 }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/missing\.safetensors/);
  });

  it("the pool holds at most 2 slots per thread: a third acquire waits for a release", async () => {
    pool = new HashPool(1);
    expect(pool.capacity).to.equal(2);
    const s1 = await pool.acquire(1024);
    await pool.acquire(1024);
    let third = false;
    const p = pool.acquire(1024).then(() => (third = true));
    await new Promise((r) => setImmediate(r));
    expect(third).to.equal(false);
    pool.release(s1);
    await p;
    expect(third).to.equal(true);
    expect(defaultThreads(2)).to.equal(2);
    expect(defaultThreads(64)).to.equal(8);
  });
});
