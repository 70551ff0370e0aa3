// The weight service and the puller over real gRPC on loopback and real files: full pulls
// verify, a cut resumes from the offset, a corrupted chunk is fetched again, bad requests get
// clear errors, and old versions go once nobody needs them.
import { existsSync } from "node:fs";
import { readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { type L0Error } from "../../lib/errors.js";
import { call, tokenMetadata } from "../../lib/grpc.js";
import { silentLogger } from "../../lib/log.js";
import { type l0, WeightsClient } from "../../lib/proto.js";
import { type Manifest } from "../../lib/weights/manifest.js";
import { pullVersion, weightsClient } from "../../images/inference/puller.js";
import { cuttingProxy, sha256File, tempDir, until, writeVersion } from "./fixtures.js";
import { type Harness, startHarness, TOKEN } from "./harness.js";

type PullCall = grpc.ServerWritableStream<l0.v1.PullRequest, l0.v1.IWeightPiece>;

async function expectSameFiles(m: Manifest, a: string, b: string): Promise<void> {
  for (const s of m.shards)
    expect(await sha256File(join(a, s.file)), s.file).to.equal(await sha256File(join(b, s.file)));
}

type PullOptions = Parameters<typeof pullVersion>[0];

/** Options of a pull of `m` into `dir` from the harness's service (or `client`). */
function pullOptions(h: Harness, m: Manifest, dir: string, extra: Partial<PullOptions> = {}): PullOptions {
  return {
    manifest: m,
    dir,
    primary: { client: h.client, label: "service" },
    token: TOKEN,
    pullerId: "t",
    metrics: h.metrics,
    logger: silentLogger(),
    ...extra,
  };
}

async function pullInto(h: Harness, m: Manifest, client = h.client, extra: Partial<PullOptions> = {}) {
  const dir = await tempDir("l0-pulled-");
  await pullVersion(pullOptions(h, m, dir, { primary: { client, label: "service" }, ...extra }));
  return dir;
}

function pullError(h: Harness, req: l0.v1.IPullRequest, token = TOKEN): Promise<grpc.ServiceError> {
  return new Promise((resolve, reject) => {
    const s = h.client.pull(req, tokenMetadata(token));
    s.on("data", () => {});
    s.on("error", (e: grpc.ServiceError) => resolve(e));
    s.on("end", () => reject(new Error("pull succeeded")));
  });
}

describe("weights: service and puller", function () {
  let h: Harness;
  const dirs: string[] = [];
  afterEach(async () => {
    await h?.close();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it("Latest is NOT_FOUND before any export, then returns the newest version's manifest", async () => {
    h = await startHarness();
    const latest = () => call(h.client.latest, h.client, {}, { token: TOKEN, timeoutMs: 5000 });
    const err = await latest().catch((e: L0Error) => e);
    expect((err as L0Error).kind).to.equal("NotFound");
    await writeVersion(h.dir, 1);
    const m2 = await writeVersion(h.dir, 2);
    await h.store.scan();
    const res = await latest();
    expect(Number(res.version)).to.equal(2);
    expect(res.manifest?.shards?.map((s) => s.file)).to.deep.equal(m2.shards.map((s) => s.file));
    expect(res.manifest?.shards?.[0]?.chunks?.[0]?.sha256).to.equal(m2.shards[0]!.chunks[0]!.sha256);
  });

  it("a full pull writes byte-identical shards and counts the bytes", async () => {
    h = await startHarness();
    const m = await writeVersion(h.dir, 1, { shards: 3, elements: 96 * 1024, chunkBytes: 100_000 });
    await h.store.scan();
    const dir = await pullInto(h, m, h.client, { pieceBytes: 48 * 1024 }); // pieces straddle chunks
    dirs.push(dir);
    await expectSameFiles(m, join(h.dir, "1"), dir);
    const total = m.shards.reduce((a, s) => a + s.sizeBytes, 0);
    const metrics = await h.registry.metrics();
    expect(metrics).to.contain(`l0_weights_bytes_total{direction="sent"} ${total}`);
    expect(metrics).to.contain(`l0_weights_bytes_total{direction="received"} ${total}`);
    expect(metrics).to.match(/l0_weights_chunk_retries_total 0/);
  });

  it("a reader slower than the disk gets every byte right (the service reuses a piece only once sent)", async () => {
    h = await startHarness();
    const m = await writeVersion(h.dir, 1, { shards: 1, elements: 1024 * 1024, chunkBytes: 1 << 20 });
    await h.store.scan();
    // HTTP/2's default 64 KiB window and a reader that pauses: the service's writes back up in
    // grpc-js, unserialized, while it reads the next pieces from the file.
    const client = new WeightsClient(h.server.address, grpc.credentials.createInsecure());
    try {
      const shard = m.shards[0]!;
      const stream = client.pull(
        { version: 1, shard: shard.file, offset: 0, pieceBytes: 32 * 1024 },
        tokenMetadata(TOKEN),
      );
      const got = Buffer.alloc(shard.sizeBytes);
      let n = 0;
      for await (const p of stream as AsyncIterable<l0.v1.WeightPiece>) {
        got.set(p.data, Number(p.offset));
        if (++n % 16 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      expect(got.equals(await readFile(join(h.dir, "1", shard.file)))).to.equal(true);
    } finally {
      client.close();
    }
  });

  it("a transfer cut mid-shard resumes from the first unverified byte", async () => {
    const offsets: number[] = [];
    h = await startHarness({
      wrap: (handlers) => {
        const pull = handlers.pull as (c: PullCall) => void;
        handlers.pull = (c: PullCall) => (offsets.push(Number(c.request.offset)), pull(c));
      },
    });
    const m = await writeVersion(h.dir, 1, { shards: 1, elements: 512 * 1024, chunkBytes: 256 * 1024 });
    await h.store.scan();
    const [host, port] = h.server.address.split(":");
    const proxy = await cuttingProxy({ host: host!, port: Number(port) }, 1_200_000);
    const client = weightsClient(proxy.address);
    try {
      const dir = await pullInto(h, m, client, { pieceBytes: 64 * 1024 });
      dirs.push(dir);
      await expectSameFiles(m, join(h.dir, "1"), dir);
    } finally {
      client.close();
      await proxy.close();
    }
    expect(offsets.length).to.be.at.least(2);
    expect(offsets[0]).to.equal(0);
    // Resumed at a chunk boundary after the bytes already verified, not from zero.
    expect(offsets[1]! % (256 * 1024)).to.equal(0);
    expect(offsets[1]).to.be.greaterThan(0);
    expect(await h.registry.metrics()).to.match(/l0_weights_chunk_retries_total [1-9]/);
  });

  it("a failing disk write (volume full) fails the pull with the error, and nothing else dies", async () => {
    h = await startHarness();
    const m = await writeVersion(h.dir, 1, { shards: 1, elements: 512 * 1024, chunkBytes: 256 * 1024 });
    await h.store.scan();
    const dir = await tempDir("l0-full-");
    dirs.push(dir);
    // The shard's staging file is /dev/full: every write fails with ENOSPC, while pieces keep coming.
    await symlink("/dev/full", join(dir, m.shards[0]!.file));
    // In a sidecar an unhandled rejection ends the process (Node's default); here, record them.
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", record);
    const err = await pullVersion(
      pullOptions(h, m, dir, { pieceBytes: 16 * 1024, maxAttempts: 2, resume: true }),
    )
      .catch((e: Error) => e)
      .finally(() => setTimeout(() => process.off("unhandledRejection", record), 50));
    await new Promise((r) => setTimeout(r, 100));
    expect(unhandled.map(String), "unhandled rejections").to.deep.equal([]);
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.match(/gave up after 2 attempts.*(ENOSPC|no space)/i);
  });

  it("resumes from what an interrupted pull left on disk: good chunks are kept, the rest is pulled", async () => {
    const offsets: number[] = [];
    h = await startHarness({
      wrap: (handlers) => {
        const pull = handlers.pull as (c: PullCall) => void;
        handlers.pull = (c: PullCall) => (offsets.push(Number(c.request.offset)), pull(c));
      },
    });
    const m = await writeVersion(h.dir, 1, { shards: 1, elements: 256 * 1024, chunkBytes: 128 * 1024 });
    await h.store.scan();
    const file = m.shards[0]!.file;
    const dir = await tempDir("l0-pulled-");
    dirs.push(dir);
    // Three good chunks, then a chunk of garbage, then nothing: a pull cut by a restart.
    const source = await readFile(join(h.dir, "1", file));
    const partial = Buffer.concat([source.subarray(0, 3 * 128 * 1024), Buffer.alloc(128 * 1024, 7)]);
    await writeFile(join(dir, file), partial);
    await pullVersion(pullOptions(h, m, dir, { resume: true }));
    await expectSameFiles(m, join(h.dir, "1"), dir);
    expect(offsets).to.deep.equal([3 * 128 * 1024]);
  });

  it("a corrupted chunk is detected and fetched again; the bad bytes never stay", async () => {
    const offsets: number[] = [];
    let corrupted = false;
    h = await startHarness({
      wrap: (handlers) => {
        const pull = handlers.pull as (c: PullCall) => void;
        handlers.pull = (c: PullCall) => {
          offsets.push(Number(c.request.offset));
          const write = c.write.bind(c);
          // Flip one byte of the third piece of the first stream only (the callback still runs:
          // the service reuses a piece's buffer once it is called).
          let n = 0;
          c.write = ((piece: l0.v1.IWeightPiece, cb?: (err?: Error | null) => void) => {
            if (!corrupted && ++n === 3) {
              corrupted = true;
              const data = Buffer.from(piece.data!);
              data[10] = data[10]! ^ 0xff;
              return write({ ...piece, data }, cb);
            }
            return write(piece, cb);
          }) as typeof c.write;
          pull(c);
        };
      },
    });
    const m = await writeVersion(h.dir, 1, { shards: 1, elements: 256 * 1024, chunkBytes: 128 * 1024 });
    await h.store.scan();
    const dir = await pullInto(h, m, h.client, { pieceBytes: 64 * 1024 });
    dirs.push(dir);
    await expectSameFiles(m, join(h.dir, "1"), dir);
    expect(corrupted).to.equal(true);
    // Piece 3 lies in chunk 1 (bytes 128 Ki..256 Ki): the re-pull starts there.
    expect(offsets).to.deep.equal([0, 128 * 1024]);
    expect(await h.registry.metrics()).to.match(/l0_weights_chunk_retries_total 1/);
  });

  it("unknown versions, unknown shards, bad ranges and missing tokens get clear errors", async () => {
    h = await startHarness();
    const m = await writeVersion(h.dir, 3, { shards: 1 });
    await h.store.scan();
    const size = m.shards[0]!.sizeBytes;
    const cases: [l0.v1.IPullRequest, string, number, RegExp][] = [
      [{ version: 9, shard: m.shards[0]!.file }, TOKEN, 5, /version 9 is not available \(have 3\)/],
      [
        { version: 3, shard: "nope.safetensors" },
        TOKEN,
        5,
        /shard: version 3 has no shard "nope.safetensors"/,
      ],
      [{ version: 3, shard: "" }, TOKEN, 3, /^shard: is required/],
      [{ version: 3, shard: m.shards[0]!.file, offset: size + 1 }, TOKEN, 3, /^offset: .* past the end/],
      [
        { version: 3, shard: m.shards[0]!.file, offset: 8, length: size },
        TOKEN,
        3,
        /^length: .* past the end/,
      ],
      [{ version: 3, shard: m.shards[0]!.file }, "wrong", 16, /run token/],
    ];
    for (const [req, token, code, details] of cases) {
      const err = await pullError(h, req, token);
      expect(err.code, JSON.stringify(req)).to.equal(code);
      expect(err.details).to.match(details);
    }
  });

  it("Watch announces the newest version at once and each newer one as it is exported", async () => {
    h = await startHarness({ keep: 5 });
    await writeVersion(h.dir, 1);
    await h.store.scan();
    const seen: number[] = [];
    const stream = h.client.watch({ engineId: "e1", afterVersion: 0 }, tokenMetadata(TOKEN));
    stream.on("data", (a: l0.v1.VersionAnnouncement) => seen.push(Number(a.version)));
    stream.on("error", () => {});
    await until(() => seen.length === 1, "first announcement");
    await writeVersion(h.dir, 2);
    await h.store.scan();
    await until(() => seen.length === 2, "second announcement");
    stream.cancel();
    expect(seen).to.deep.equal([1, 2]);
  });

  it("rejects a malformed export, keeps serving the previous version, and removes old versions nobody needs", async () => {
    h = await startHarness({ keep: 1 });
    await writeVersion(h.dir, 1);
    await h.store.scan();
    const { writeFile, mkdir } = await import("node:fs/promises");
    await mkdir(join(h.dir, "2"));
    await writeFile(
      join(h.dir, "2", "manifest.json"),
      JSON.stringify({ version: 2, chunkBytes: 0, shards: [] }),
    );
    await h.store.scan();
    expect(h.store.latest()?.version).to.equal(1);
    // v3 arrives while an engine still syncs to v1 and a pull of v1 is in flight: v1 stays.
    h.engines.report({ engineId: "e1", version: 0, state: "Syncing", targetVersion: 1, detail: "" });
    const release = h.store.pin(1);
    await writeVersion(h.dir, 3);
    await h.store.scan();
    expect(h.store.versions()).to.deep.equal([1, 3]);
    h.engines.report({ engineId: "e1", version: 1, state: "Serving", targetVersion: 1, detail: "" });
    await h.store.collect();
    expect(h.store.versions()).to.deep.equal([1, 3]); // still pinned by the pull
    release();
    await h.store.collect();
    expect(h.store.versions()).to.deep.equal([3]);
    expect(existsSync(join(h.dir, "1"))).to.equal(false);
    expect(JSON.parse(await readFile(join(h.dir, "3", "manifest.json"), "utf8")).version).to.equal(3);
  });
});
