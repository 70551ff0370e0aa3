// The receiving end of a verified pull, whatever carries the bytes (a gRPC Pull stream, or a
// plain socket in the benchmark): pieces of one shard arrive in order from `verified`; each is
// written in place and hashed, and a chunk counts as verified once its sha256 matches the
// manifest and its bytes are on the file. Chunks are verified in order, so `verified` is always
// a prefix of the shard, which is what a resumed pull starts from and what peers relay up to.
// Inline (no pool): hashed on this thread and written from the received buffer. With a
// HashPool: copied into a slot of shared memory and hashed + written on a worker thread.
import { type Hash, createHash } from "node:crypto";
import { type FileHandle } from "node:fs/promises";
import { type Chunk, type Shard } from "./manifest.js";
import { type HashPool, type Slot } from "./hash-pool.js";

export class ChunkMismatch extends Error {}

/** Bytes of received pieces whose writes may be running at once, per shard (inline mode). */
const WRITE_WINDOW = 16 << 20;

/** Writes all of `buf` at `offset` (a positional write may be short). */
export async function writeAll(fh: FileHandle, buf: Uint8Array, offset: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, offset + done);
    done += bytesWritten;
  }
}

interface Filling {
  hash: Hash | null;
  slot: Slot | null;
  filled: number;
  writes: Promise<void>[];
}

interface Pending {
  chunk: Chunk;
  /** The chunk's sha256 once hashed and every write of it has landed. */
  result: Promise<string>;
}

export class ShardSink {
  readonly #fh: FileHandle;
  readonly #shard: Shard;
  readonly #pool: HashPool | null;
  readonly #onVerified: (end: number) => void;
  #verified: number;
  /** Next byte expected. */
  #pos: number;
  #ci: number;
  /** The chunk being filled. */
  #cur: Filling | null = null;
  readonly #pending: Pending[] = [];
  readonly #writing: { bytes: number; landed: Promise<unknown> }[] = [];
  #writingBytes = 0;

  constructor(opts: {
    fh: FileHandle;
    shard: Shard;
    /** Verified prefix already on the file; the first piece must start here (a chunk boundary). */
    from: number;
    pool?: HashPool | null;
    onVerified?: (end: number) => void;
  }) {
    this.#fh = opts.fh;
    this.#shard = opts.shard;
    this.#pool = opts.pool ?? null;
    this.#onVerified = opts.onVerified ?? (() => {});
    this.#verified = this.#pos = opts.from;
    this.#ci = opts.shard.chunks.findIndex((c) => c.offset === opts.from);
    if (this.#ci < 0 && opts.from < opts.shard.sizeBytes)
      throw new Error(`${opts.shard.file}: ${opts.from} is not a chunk boundary`);
  }

  get verified(): number {
    return this.#verified;
  }

  /** Offset the next piece must start at. */
  get position(): number {
    return this.#pos;
  }

  /** Takes the next piece; resolves when there is room for more (bounded memory). */
  async push(data: Uint8Array): Promise<void> {
    if (this.#pos + data.length > this.#shard.sizeBytes)
      throw new ChunkMismatch(`piece runs past the end of ${this.#shard.file}`);
    let landed: Promise<void> | null = null;
    if (!this.#pool) {
      landed = writeAll(this.#fh, data, this.#pos);
      landed.catch(() => undefined); // awaited through its chunk; unhandled meanwhile would crash
      this.#track(data.length, landed);
    }
    let used = 0;
    while (used < data.length) {
      const chunk = this.#shard.chunks[this.#ci]!;
      this.#cur ??= {
        hash: this.#pool ? null : createHash("sha256"),
        slot: this.#pool ? await this.#pool.acquire(chunk.sizeBytes) : null,
        filled: 0,
        writes: [],
      };
      const cur = this.#cur;
      const take = Math.min(data.length - used, chunk.sizeBytes - cur.filled);
      const part = data.subarray(used, used + take);
      if (cur.slot) cur.slot.buf.set(part, cur.filled);
      else cur.hash!.update(part);
      if (landed) cur.writes.push(landed);
      cur.filled += take;
      used += take;
      this.#pos += take;
      if (cur.filled === chunk.sizeBytes) this.#chunkDone(chunk, cur);
    }
    await this.#settleReady();
    while (this.#writingBytes > WRITE_WINDOW) {
      const w = this.#writing.shift()!;
      this.#writingBytes -= w.bytes;
      await w.landed.catch(() => undefined);
    }
  }

  /** Verifies everything received; throws ChunkMismatch on a bad chunk, or the write's error. */
  async finish(): Promise<void> {
    while (this.#pending.length > 0) await this.#settle();
  }

  /** Waits for every write still running (before the file is closed or the range pulled again). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#writing.map((w) => w.landed), ...this.#pending.map((p) => p.result)]);
    if (this.#cur?.slot) this.#pool!.release(this.#cur.slot);
    this.#cur = null;
  }

  #chunkDone(chunk: Chunk, cur: Filling): void {
    let result: Promise<string>;
    if (cur.slot) {
      const slot = cur.slot;
      result = this.#pool!.hashAndWrite(slot, chunk.sizeBytes, this.#fh.fd, chunk.offset);
      void result.then(
        () => this.#pool!.release(slot),
        () => this.#pool!.release(slot),
      );
    } else {
      const sha = cur.hash!.digest("hex");
      result = Promise.all(cur.writes).then(() => sha);
    }
    result.catch(() => undefined); // thrown by #settle, in order
    this.#pending.push({ chunk, result });
    this.#cur = null;
    this.#ci++;
  }

  #track(bytes: number, landed: Promise<unknown>): void {
    this.#writing.push({ bytes, landed });
    this.#writingBytes += bytes;
  }

  /** Settles the leading chunks already done (inline: all but the newest, as before). */
  async #settleReady(): Promise<void> {
    if (!this.#pool) {
      while (this.#pending.length > 1) await this.#settle();
      return;
    }
    while (this.#pending.length > 0 && (await isSettled(this.#pending[0]!.result))) await this.#settle();
  }

  async #settle(): Promise<void> {
    const { chunk, result } = this.#pending.shift()!;
    const sha256 = await result;
    if (sha256 !== chunk.sha256)
      throw new ChunkMismatch(
        `chunk at ${chunk.offset} of ${this.#shard.file}: sha256 ${sha256}, manifest ${chunk.sha256}`,
      );
    this.#verified = chunk.offset + chunk.sizeBytes;
    this.#onVerified(this.#verified);
  }
}

const PENDING = Symbol("pending");
async function isSettled(p: Promise<unknown>): Promise<boolean> {
  return (
    (await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      Promise.resolve(PENDING),
    ])) !== PENDING
  );
}
