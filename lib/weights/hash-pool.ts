// Worker threads that hash a received chunk (sha256) and write it at its place in the shard
// file, so a puller's event loop only receives and copies: with N threads a pull uses N more
// cores. Chunks travel in slots of shared memory (no copy to the thread); the slots bound the
// memory of a whole process's pulls: 2 per thread, each as large as the largest chunk.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

// CommonJS source run with `eval: true`, so it needs no file of its own under tsx or in dist/.
const WORKER = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const { writeSync } = require("node:fs");
parentPort.on("message", ({ id, sab, length, fd, position }) => {
  try {
    const buf = Buffer.from(sab, 0, length);
    const sha256 = createHash("sha256").update(buf).digest("hex");
    let done = 0;
    while (done < length) done += writeSync(fd, buf, done, length - done, position + done);
    parentPort.postMessage({ id, sha256 });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message), code: err && err.code });
  }
});
`;

/** Threads when the count is left to the machine: one per core, at most 8 (sha256 at ~2 GB/s each). */
export function defaultThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.min(8, cores));
}

/** A slot of shared memory a chunk is copied into; hand it to `hashAndWrite` or `release` it. */
export interface Slot {
  buf: Buffer;
  sab: SharedArrayBuffer;
}

interface Job {
  resolve: (sha256: string) => void;
  reject: (err: Error) => void;
  worker: Worker;
}

export class HashPool {
  readonly threads: number;
  readonly #workers: Worker[] = [];
  readonly #jobs = new Map<number, Job>();
  readonly #inFlight = new Map<Worker, number>();
  readonly #free: Slot[] = [];
  readonly #waiting: ((s: Slot) => void)[] = [];
  #slots = 0;
  #next = 0;
  #closed = false;

  constructor(threads = defaultThreads()) {
    this.threads = Math.max(1, Math.floor(threads));
    for (let i = 0; i < this.threads; i++) {
      const w = new Worker(WORKER, { eval: true });
      w.on("message", (m: { id: number; sha256?: string; error?: string; code?: string }) => {
        const job = this.#jobs.get(m.id);
        this.#jobs.delete(m.id);
        if (!job) return;
        this.#busy(job.worker, -1);
        if (m.sha256 !== undefined) job.resolve(m.sha256);
        else job.reject(Object.assign(new Error(m.error ?? "hash worker failed"), { code: m.code }));
      });
      w.on("error", (err) => this.#failAll(err));
      w.unref(); // an idle pool does not keep a process alive (#busy refs it while it works)
      this.#workers.push(w);
    }
  }

  /** Slots in the pool (2 per thread): the most chunk bytes held at once is this x the chunk size. */
  get capacity(): number {
    return 2 * this.threads;
  }

  /** A free slot of at least `bytes`, waiting for one to be released when all are in use. */
  async acquire(bytes: number): Promise<Slot> {
    let s = this.#free.pop();
    if (!s && this.#slots < this.capacity) {
      this.#slots++;
      s = newSlot(bytes);
    }
    s ??= await new Promise<Slot>((resolve) => this.#waiting.push(resolve));
    return s.buf.length >= bytes ? s : newSlot(bytes);
  }

  release(s: Slot): void {
    const w = this.#waiting.shift();
    if (w) w(s);
    else this.#free.push(s);
  }

  /** Hashes slot bytes [0, length) and writes them to `fd` at `position`; resolves with the sha256 (hex). */
  hashAndWrite(slot: Slot, length: number, fd: number, position: number): Promise<string> {
    if (this.#closed) return Promise.reject(new Error("hash pool closed"));
    const id = this.#next++;
    const w = this.#workers[id % this.#workers.length]!;
    return new Promise<string>((resolve, reject) => {
      this.#jobs.set(id, { resolve, reject, worker: w });
      this.#busy(w, +1);
      w.postMessage({ id, sab: slot.sab, length, fd, position });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#failAll(new Error("hash pool closed"));
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }

  #failAll(err: Error): void {
    for (const j of this.#jobs.values()) {
      this.#busy(j.worker, -1);
      j.reject(err);
    }
    this.#jobs.clear();
  }

  /** A worker with jobs keeps the process alive until they are answered. */
  #busy(w: Worker, delta: number): void {
    const n = (this.#inFlight.get(w) ?? 0) + delta;
    this.#inFlight.set(w, n);
    if (n === 1 && delta > 0) w.ref();
    if (n === 0) w.unref();
  }
}

function newSlot(bytes: number): Slot {
  const sab = new SharedArrayBuffer(bytes);
  return { sab, buf: Buffer.from(sab) };
}
