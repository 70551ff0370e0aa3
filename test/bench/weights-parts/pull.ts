// The weight bench's gRPC-side children: the gRPC transport alone (pieces dropped), and the
// verified pull a sidecar makes (`pullVersion`, over the bulk channel or gRPC Pull).
import { readFile } from "node:fs/promises";
import { pullVersion, type Transport, weightsClient } from "../../../images/inference/puller.js";
import { tokenMetadata } from "../../../lib/grpc.js";
import { silentLogger } from "../../../lib/log.js";
import { createRegistry } from "../../../lib/metrics.js";
import { HashPool } from "../../../lib/weights/hash-pool.js";
import { parseManifestText } from "../../../lib/weights/manifest.js";
import { weightsMetrics } from "../../../lib/weights/metrics.js";
import { cpuSeconds } from "./tcp.js";

interface ChildResult {
  seconds: number;
  maxRssMiB: number;
  cpu: number;
}

async function timed(body: () => Promise<void>): Promise<ChildResult> {
  const c0 = cpuSeconds();
  const t0 = performance.now();
  await body();
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024, cpu: cpuSeconds() - c0 };
}

/** gRPC transport alone: the same Pull streams, each piece dropped (no hash, no write). */
export async function discardChild(args: string[]): Promise<ChildResult> {
  const [address, tokenFile, manifestFile] = args as [string, string, string];
  const manifest = parseManifestText(await readFile(manifestFile, "utf8"));
  const token = (await readFile(tokenFile, "utf8")).trim();
  const client = weightsClient(address);
  const out = await timed(async () => {
    for (const shard of manifest.shards) {
      const req = { version: manifest.version, shard: shard.file, offset: 0, pullerId: "bench" };
      let n = 0;
      for await (const p of client.pull(req, tokenMetadata(token)) as AsyncIterable<{ data: Uint8Array }>)
        n += p.data.length;
      if (n !== shard.sizeBytes) throw new Error(`${shard.file}: got ${n} of ${shard.sizeBytes} bytes`);
    }
  });
  client.close();
  return out;
}

/** The verified pull of a sidecar: over the bulk channel `bulk` (auto) or gRPC Pull ("grpc", no bulk). */
export async function pullChild(args: string[]): Promise<ChildResult> {
  const [address, tokenFile, manifestFile, dir, streams, threads, transport, bulk] = args as [
    string,
    string,
    string,
    string,
    string,
    string,
    Transport,
    string,
  ];
  const hashPool = Number(threads) > 0 ? new HashPool(Number(threads)) : null;
  const manifest = parseManifestText(await readFile(manifestFile, "utf8"));
  const token = (await readFile(tokenFile, "utf8")).trim();
  const client = weightsClient(address);
  const out = await timed(() =>
    pullVersion({
      manifest,
      dir,
      primary: { client, label: "service", bulk: bulk || undefined },
      token,
      pullerId: "bench",
      metrics: weightsMetrics(createRegistry({ defaultMetrics: false })),
      logger: silentLogger(),
      streams: Number(streams),
      hashPool,
      transport,
    }),
  );
  client.close();
  await hashPool?.close();
  return out;
}
