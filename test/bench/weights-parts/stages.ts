// CPU-seconds per GB of each stage of a verified pull, one at a time on this thread: sha256 of
// 4 MiB chunks, the copy into a hashing thread's shared slot, positional writes into staging,
// and reading the staged shards back (what an engine's loader does before its copy to the GPU).
// CPU time, unlike wall time, barely moves with the machine's load.
import { createHash, randomFillSync } from "node:crypto";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { cpuSeconds } from "./tcp.js";

const MiB = 1024 ** 2;

export interface StageCosts {
  hash: number;
  copy: number;
  write: number;
  read: number;
}

/** Measures each stage over `bytes` (rounded to 4 MiB chunks) with a file under `dir`. */
export async function stageCosts(dir: string, bytes: number): Promise<StageCosts> {
  const chunk = Buffer.allocUnsafeSlow(4 * MiB);
  randomFillSync(chunk);
  const n = Math.max(1, Math.floor(bytes / chunk.length));
  const gb = (n * chunk.length) / 1e9;
  const time = async (f: (i: number) => unknown): Promise<number> => {
    const c0 = cpuSeconds();
    for (let i = 0; i < n; i++) await f(i);
    return (cpuSeconds() - c0) / gb;
  };
  const hash = await time(() => createHash("sha256").update(chunk).digest());
  const slot = Buffer.from(new SharedArrayBuffer(chunk.length));
  const copy = await time(() => slot.set(chunk));
  const path = join(dir, "stage-costs.bin");
  const fh = await open(path, "w+");
  try {
    const write = await time(async (i) => {
      for (let done = 0; done < chunk.length;)
        done += (await fh.write(chunk, done, chunk.length - done, i * chunk.length + done)).bytesWritten;
    });
    const read = await time(async (i) => {
      for (let got = 0; got < chunk.length;)
        got += (await fh.read(chunk, got, chunk.length - got, i * chunk.length + got)).bytesRead;
    });
    return { hash, copy, write, read };
  } finally {
    await fh.close();
    await rm(path, { force: true });
  }
}
