// Pure parts of weight sync, table-tested: manifest validation names the bad field, the piece
// serializer is wire-identical to the generated one, the fan-out tree, and the hub hook's wait.
import { expect } from "chai";
import fc from "fast-check";
import { isL0Error } from "../../lib/errors.js";
import { silentLogger } from "../../lib/log.js";
import { l0 } from "../../lib/proto.js";
import { EngineRegistry, judge, type EngineStatus } from "../../images/trainer/weights/engines.js";
import { assign, FanoutPlanner, parentIndex } from "../../images/trainer/weights/fanout.js";
import { parseManifest, parseManifestText, safetensorsIndex } from "../../lib/weights/manifest.js";
import { grpcOut, pumpRange, serializePiece } from "../../lib/weights/stream.js";

const H = "a".repeat(64);
const good = () => ({
  version: 3,
  format: "safetensors",
  chunkBytes: 100,
  shards: [
    {
      file: "model-00001-of-00001.safetensors",
      sizeBytes: 150,
      sha256: H,
      chunks: [
        { offset: 0, sizeBytes: 100, sha256: H },
        { offset: 100, sizeBytes: 50, sha256: H },
      ],
    },
  ],
  tensors: [
    {
      name: "w",
      dtype: "F32",
      shape: [4, 4],
      shard: "model-00001-of-00001.safetensors",
      offset: 24,
      sizeBytes: 64,
    },
  ],
  createdUnixMs: 1,
  model: "tiny",
});

type Mutate = (m: ReturnType<typeof good>) => unknown;

describe("weights: units", () => {
  describe("manifest validation", () => {
    it("accepts the learner's JSON form, 64-bit ints as numbers or decimal strings", () => {
      const m = good() as Record<string, unknown>;
      m.version = "3";
      const parsed = parseManifest(m);
      expect(parsed.version).to.equal(3);
      expect(safetensorsIndex(parsed).weight_map).to.deep.equal({ w: "model-00001-of-00001.safetensors" });
    });

    const cases: [string, Mutate, RegExp][] = [
      ["version 0", (m) => ({ ...m, version: 0 }), /manifest: version: must be an integer >= 1/],
      ["missing chunkBytes", (m) => ({ ...m, chunkBytes: undefined }), /chunkBytes: must be an integer >= 1/],
      ["huge chunks", (m) => ({ ...m, chunkBytes: 2 ** 40 }), /chunkBytes: must be at most/],
      ["other format", (m) => ({ ...m, format: "gguf" }), /format: must be "safetensors"/],
      ["no shards", (m) => ({ ...m, shards: [] }), /shards: must list at least one shard/],
      [
        "path in file",
        (m) => ((m.shards[0]!.file = "../../etc/passwd"), m),
        /shards\[0\]\.file: must be a plain file name/,
      ],
      [
        "chunk gap",
        (m) => ((m.shards[0]!.chunks[1]!.offset = 101), m),
        /shards\[0\]\.chunks\[1\]\.offset: must be 100/,
      ],
      [
        "short cover",
        (m) => ((m.shards[0]!.sizeBytes = 151), m),
        /shards\[0\]\.chunks: must cover the shard's 151 bytes/,
      ],
      [
        "bad hash",
        (m) => ((m.shards[0]!.chunks[0]!.sha256 = "xyz"), m),
        /chunks\[0\]\.sha256: must be 64 lowercase hex/,
      ],
      [
        "big chunk",
        (m) => ((m.chunkBytes = 60), m),
        /chunks\[0\]\.sizeBytes: must be at most chunkBytes \(60\)/,
      ],
      [
        "unknown shard",
        (m) => ((m.tensors[0]!.shard = "x.safetensors"), m),
        /tensors\[0\]\.shard: names no shard/,
      ],
      ["tensor past end", (m) => ((m.tensors[0]!.offset = 140), m), /tensors\[0\]: byte range ends at 204/],
      [
        "negative dim",
        (m) => ((m.tensors[0]!.shape = [-1]), m),
        /tensors\[0\]\.shape\[0\]: must be an integer >= 0/,
      ],
      ["not an object", () => [], /manifest: must be a JSON object/],
    ];
    for (const [name, mutate, message] of cases) {
      it(`rejects ${name} with the field named`, () => {
        let err: unknown;
        try {
          parseManifest(mutate(good()));
        } catch (e) {
          err = e;
        }
        expect(isL0Error(err, "InvalidArgument"), String(err)).to.equal(true);
        expect((err as Error).message).to.match(message);
      });
    }

    it("names the file on a JSON syntax error", () => {
      expect(() => parseManifestText("{", "/w/3/manifest.json")).to.throw(
        /\/w\/3\/manifest.json: not valid JSON/,
      );
    });
  });

  it("the one-copy piece serializer is wire-identical to the generated encoding", () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 40 }), fc.uint8Array({ maxLength: 300 }), (offset, bytes) => {
        const generated = Buffer.from(l0.v1.WeightPiece.encode({ offset, data: bytes }).finish());
        expect(serializePiece({ offset, data: bytes }).equals(generated)).to.equal(true);
      }),
    );
  });

  it("pumpRange's headroom pieces serialize without a copy and decode to the file's bytes", async () => {
    const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const { EventEmitter } = await import("node:events");
    const dir = await mkdtemp(join(tmpdir(), "l0-pump-"));
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    await writeFile(join(dir, "f"), bytes);
    const got: Buffer[] = [];
    const call = Object.assign(new EventEmitter(), {
      write: (p: l0.v1.IWeightPiece) => {
        const wire = serializePiece(p);
        expect(wire.buffer).to.equal(p.data!.buffer); // same memory: no copy
        const back = l0.v1.WeightPiece.decode(wire);
        expect(Number(back.offset)).to.equal(100 + got.reduce((a, b) => a + b.length, 0));
        got.push(Buffer.from(back.data));
        return true;
      },
    });
    await pumpRange(grpcOut(call as never), { path: join(dir, "f"), start: 100, end: 1000, pieceBytes: 256 });
    await rm(dir, { recursive: true, force: true });
    expect(Buffer.concat(got).equals(bytes.subarray(100))).to.equal(true);
    expect(got.map((b) => b.length)).to.deep.equal([256, 256, 256, 132]);
  });

  describe("fan-out tree", () => {
    it("feeds at most `fanout` children per node; the service feeds one node, so it sends each byte once", () => {
      expect([0, 1, 2, 3, 4, 5, 6].map((i) => parentIndex(i, 2))).to.deep.equal([-1, 0, 0, 1, 1, 2, 2]);
      expect([0, 1, 2, 3].map((i) => parentIndex(i, 1))).to.deep.equal([-1, 0, 1, 2]);
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 200 }), (k, n) => {
          const children = new Map<number, number>();
          for (let i = 0; i < n; i++) {
            const p = parentIndex(i, k);
            expect(p).to.be.lessThan(i);
            children.set(p, (children.get(p) ?? 0) + 1);
          }
          for (const c of children.values()) expect(c).to.be.at.most(k);
          expect(children.get(-1)).to.equal(1);
        }),
      );
    });

    it("skips parents that serve no peers or have gone quiet; plans are idempotent", () => {
      const members = [
        { engineId: "a", peerAddress: "a:1", peerBulkPort: 2 },
        { engineId: "b", peerAddress: "", peerBulkPort: 0 },
        { engineId: "c", peerAddress: "c:1", peerBulkPort: 2 },
        { engineId: "d", peerAddress: "d:1", peerBulkPort: 0 },
        { engineId: "e", peerAddress: "e:1", peerBulkPort: 0 },
      ];
      expect(assign(members, "a", 2).sourceAddress).to.equal("");
      expect(assign(members, "c", 2)).to.deep.equal({
        sourceAddress: "a:1",
        sourceEngineId: "a",
        sourceBulkPort: 2,
      });
      // Parent b serves no peers: its own parent a feeds them instead (never the service).
      expect(assign(members, "d", 2).sourceAddress).to.equal("a:1");
      expect(assign(members, "e", 2).sourceAddress).to.equal("a:1");
      expect(assign(members, "c", 2, (id) => id !== "a").sourceAddress).to.equal("");
      const planner = new FanoutPlanner(1);
      expect(planner.plan(7, "x", "x:1").sourceAddress).to.equal("");
      expect(planner.plan(7, "y", "y:1").sourceAddress).to.equal("x:1");
      expect(planner.plan(7, "z", "z:1", undefined, 9).sourceBulkPort).to.equal(0); // from y, which has none
      expect(planner.plan(7, "y", "y:1").sourceAddress).to.equal("x:1");
      expect(planner.plan(7, "x", "x:1").sourceAddress).to.equal("");
    });
  });

  describe("hub hook", () => {
    const e = (
      engineId: string,
      version: number,
      state: EngineStatus["state"],
      targetVersion = version,
    ): EngineStatus => ({
      engineId,
      version,
      state,
      targetVersion,
      detail: "",
      updatedUnixMs: 0,
    });
    it("judges when every engine serves v, when one failed it, and counts the engines", () => {
      expect(judge([e("a", 5, "Serving"), e("b", 6, "Serving")], 5, 2)).to.deep.equal({ done: true });
      expect(judge([e("a", 5, "Serving")], 5, 2).done).to.equal(false);
      expect(judge([e("a", 4, "Syncing", 5)], 5, 1)).to.deep.include({ done: false });
      const j = judge([e("a", 4, "Degraded", 5), e("b", 5, "Serving")], 5, 1);
      expect(j.done === false && j.degraded?.map((x) => x.engineId)).to.deep.equal(["a"]);
      // Degraded on an older target does not doom a newer wait.
      expect(judge([e("a", 3, "Degraded", 4)], 5, 1)).to.not.have.property("degraded");
      // When v5 is the newest published, an engine on v6 holds weights nobody published now.
      const ahead = judge([e("a", 5, "Serving"), e("b", 6, "Serving")], 5, 2, true);
      expect(ahead.done === false && ahead.ahead?.map((x) => x.engineId)).to.deep.equal(["b"]);
    });

    it("fails at once, naming the engine, when an engine is ahead of the newest published version", async () => {
      const reg = new EngineRegistry({ logger: silentLogger() });
      reg.report({ engineId: "e1", version: 50, state: "Serving", targetVersion: 50, detail: "" });
      // A wait of 10 minutes: only failing at once ends it within the test's timeout.
      const res = await reg.awaitAllServe(3, { timeoutMs: 600_000, newest: true });
      expect(res).to.deep.include({ ok: false, reason: "EngineAhead" });
      if (!res.ok) expect(res.message).to.contain("e1 (serves v50, Serving)");
      // Without `newest` (a wait for "at least v3") it is served.
      expect((await reg.awaitAllServe(3, { timeoutMs: 100 })).ok).to.equal(true);
    });

    it("times out with a clear condition instead of hanging, and forgets silent engines", async () => {
      let now = 1000;
      const reg = new EngineRegistry({ logger: silentLogger(), now: () => now, forgetAfterMs: 500 });
      reg.report({ engineId: "e1", version: 4, state: "Syncing", targetVersion: 5, detail: "" });
      const res = await reg.awaitAllServe(5, { timeoutMs: 30, minEngines: 2 });
      expect(res).to.deep.include({ ok: false, reason: "WeightSyncTimeout" });
      if (!res.ok)
        expect(res.message).to.match(
          /not every engine serves v5 after 30 ms: e1 \(serves v4, Syncing\); 1 of 2/,
        );
      const waiting = reg.awaitAllServe(5, { timeoutMs: 5000 });
      reg.report({ engineId: "e1", version: 5, state: "Serving", targetVersion: 5, detail: "" });
      expect((await waiting).ok).to.equal(true);
      now += 1000;
      expect(reg.engines()).to.deep.equal([]);
    });
  });
});
