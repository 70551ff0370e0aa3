// The weight bench's plain-socket references: raw TCP (bytes dropped) and the verified pull over
// plain sockets — the same shards, chunking, sha256 per chunk and positional writes as the gRPC
// puller (the same ShardSink, inline or on a HashPool), one connection per shard and `streams`
// at once — so `gbps / verified_tcp_gbps` is what gRPC itself costs.
import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { HashPool } from "../../../lib/weights/hash-pool.js";
import { type Manifest } from "../../../lib/weights/manifest.js";
import { ShardSink } from "../../../lib/weights/sink.js";

const MiB = 1024 ** 2;

/** CPU seconds (user + system) this process has used. */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Serves `total` random bytes in 4 MiB writes to each connection (the raw TCP ceiling). */
export async function rawServer(total: number): Promise<net.Server> {
  const buf = randomBytes(4 * MiB);
  const server = net.createServer((sock) => {
    void (async () => {
      let sent = 0;
      while (sent < total) {
        const n = Math.min(buf.length, total - sent);
        sent += n;
        if (!sock.write(n === buf.length ? buf : buf.subarray(0, n)))
          await new Promise((r) => sock.once("drain", r));
      }
      sock.end();
    })();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return server;
}

/** Child: reads one connection to its end, dropping the bytes. */
export async function rawReceive(port: number): Promise<{ bytes: number; seconds: number; cpu: number }> {
  const c0 = cpuSeconds();
  const sock = net.connect(port, "127.0.0.1");
  let n = 0;
  let t0 = 0;
  sock.on("data", (d: Buffer) => {
    if (n === 0) t0 = performance.now();
    n += d.length;
  });
  await new Promise((r) => sock.once("end", r));
  return { bytes: n, seconds: (performance.now() - t0) / 1000, cpu: cpuSeconds() - c0 };
}

/**
 * Serves shard files of an export dir: a client sends "<file>\n" and gets the whole file, read
 * in 4 MiB pieces into reused buffers, one read ahead of the socket.
 */
export async function shardServer(versionDir: string): Promise<net.Server> {
  const server = net.createServer((sock) => {
    let line = "";
    const onData = (d: Buffer) => {
      line += String(d);
      if (!line.includes("\n")) return;
      sock.off("data", onData);
      void sendFile(sock, join(versionDir, line.slice(0, line.indexOf("\n")))).catch(() => sock.destroy());
    };
    sock.on("data", onData);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return server;
}

async function sendFile(sock: net.Socket, path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    const bufs = [Buffer.allocUnsafeSlow(4 * MiB), Buffer.allocUnsafeSlow(4 * MiB)];
    for (let i = 0, pos = 0; ; i++) {
      const buf = bufs[i % 2]!;
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      // The buffer is reused two reads later: wait until the socket took this one.
      await new Promise<void>((resolve, reject) =>
        sock.write(buf.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve())),
      );
    }
  } finally {
    await fh.close();
  }
  sock.end();
}

/** Child: the verified pull over plain sockets, `streams` shards at once; `threads` 0 = inline. */
export async function verifiedTcpPull(
  port: number,
  manifest: Manifest,
  dir: string,
  streams: number,
  threads: number,
): Promise<{ seconds: number; cpu: number }> {
  const pool = threads > 0 ? new HashPool(threads) : null;
  const c0 = cpuSeconds();
  const t0 = performance.now();
  const queue = [...manifest.shards];
  const lane = async () => {
    for (let shard = queue.shift(); shard; shard = queue.shift()) {
      const fh = await open(join(dir, shard.file), "w");
      const sink = new ShardSink({ fh, shard, from: 0, pool });
      try {
        const sock = net.connect(port, "127.0.0.1");
        sock.write(`${shard.file}\n`);
        for await (const d of sock as AsyncIterable<Buffer>) await sink.push(d);
        await sink.finish();
        if (sink.verified !== shard.sizeBytes)
          throw new Error(`${shard.file}: verified ${sink.verified} of ${shard.sizeBytes}`);
      } finally {
        await sink.drain();
        await fh.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, streams) }, lane));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - c0;
  await pool?.close();
  return { seconds, cpu };
}
