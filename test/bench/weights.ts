// Weight streaming benchmark: exports a synthetic checkpoint (default 2 GiB in 8 shards) and, in
// the same run, measures the raw TCP loopback ceiling (one connection, 4 MiB writes, reader in a
// child process), the gRPC transport alone (the same Pull streams, pieces dropped), one
// subscriber pulling it from the weight service (a child process that verifies every chunk and
// writes the shards into RAM-backed staging, like a sidecar on an emptyDir with medium Memory;
// one more pull onto disk for reference), and the wall time for 1 and 4 full sidecars (child
// processes, peer fan-out) to serve a newly published version.
// Usage: npm run bench -- weights [--gib 2] [--shards 8] [--repeat 3]
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes, randomFillSync } from "node:crypto";
import { existsSync, readFileSync, statfsSync } from "node:fs";
import { link, mkdir, mkdtemp, open, rename, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../../lib/grpc.js";
import { silentLogger } from "../../lib/log.js";
import { createRegistry } from "../../lib/metrics.js";
import { EngineRegistry } from "../../images/trainer/weights/engines.js";
import { type Manifest, type Shard } from "../../lib/weights/manifest.js";
import { weightsMetrics } from "../../lib/weights/metrics.js";
import { WeightService } from "../../images/trainer/weights/service.js";
import { VersionStore } from "../../images/trainer/weights/store.js";
import { emit, median, round } from "./stats.js";

const SELF = fileURLToPath(import.meta.url);
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

/** Starts this file as a child in `mode`; `done` resolves with the last line it prints. */
function spawnChild(mode: string, args: string[]): { proc: ChildProcess; done: Promise<string> } {
  const proc = spawn(process.execPath, ["--import", "tsx", SELF, "--child", mode, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const done = new Promise<string>((resolve, reject) => {
    let out = "";
    proc.stdout!.on("data", (d: Buffer) => (out += String(d)));
    proc.on("error", reject);
    proc.on("exit", (code, signal) =>
      code === 0 || signal === "SIGTERM"
        ? resolve(out.trim().split("\n").pop() ?? "")
        : reject(new Error(`${mode} child exited ${code ?? signal}`)),
    );
  });
  return { proc, done };
}

const child = (mode: string, args: string[]): Promise<string> => spawnChild(mode, args).done;

/** Writes one exported version of `totalBytes` in `nShards` safetensors shards, hashing chunks as it goes. */
async function exportCheckpoint(
  dir: string,
  version: number,
  totalBytes: number,
  nShards: number,
): Promise<Manifest> {
  const chunkBytes = 4 * MiB; // as the learner exports (images/trainer/learner/export.py)
  const vdir = join(dir, String(version));
  await mkdir(vdir, { recursive: true });
  const shards: Shard[] = [];
  const tensors: Manifest["tensors"] = [];
  const block = Buffer.allocUnsafe(chunkBytes);
  for (let i = 0; i < nShards; i++) {
    const file = `model-${String(i + 1).padStart(5, "0")}-of-${String(nShards).padStart(5, "0")}.safetensors`;
    const dataBytes = Math.floor(totalBytes / nShards / 4) * 4;
    const name = `layers.${i}.weight`;
    let header = Buffer.from(
      JSON.stringify({ [name]: { dtype: "F32", shape: [dataBytes / 4], data_offsets: [0, dataBytes] } }),
    );
    header = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const head = Buffer.concat([len, header]);
    const size = head.length + dataBytes;
    const fh = await open(join(vdir, file), "w");
    const whole = createHash("sha256");
    const chunks = [];
    for (let off = 0; off < size; off += chunkBytes) {
      const n = Math.min(chunkBytes, size - off);
      const part = block.subarray(0, n);
      randomFillSync(part);
      if (off === 0) head.copy(part);
      await fh.write(part, 0, n, off);
      whole.update(part);
      chunks.push({ offset: off, sizeBytes: n, sha256: createHash("sha256").update(part).digest("hex") });
    }
    await fh.close();
    shards.push({ file, sizeBytes: size, sha256: whole.digest("hex"), chunks });
    tensors.push({
      name,
      dtype: "F32",
      shape: [dataBytes / 4],
      shard: file,
      offset: head.length,
      sizeBytes: dataBytes,
    });
  }
  const m: Manifest = {
    version,
    format: "safetensors",
    chunkBytes,
    shards,
    tensors,
    createdUnixMs: Date.now(),
    model: "bench",
  };
  await writeFile(join(vdir, "manifest.json"), JSON.stringify(m));
  return m;
}

/** The same bytes as version `version` in another export dir: hard links, then the manifest (by rename). */
async function republish(fromDir: string, from: Manifest, toDir: string, version: number): Promise<void> {
  const vdir = join(toDir, String(version));
  await mkdir(vdir, { recursive: true });
  for (const s of from.shards) await link(join(fromDir, String(from.version), s.file), join(vdir, s.file));
  await writeFile(join(vdir, "manifest.tmp"), JSON.stringify({ ...from, version }));
  await rename(join(vdir, "manifest.tmp"), join(vdir, "manifest.json"));
}

// ---------------------------------------------------------------- children
async function childMain(mode: string, args: string[]): Promise<void> {
  if (mode === "tcp-recv") {
    const c0 = cpuSeconds();
    const sock = net.connect(Number(args[0]), "127.0.0.1");
    let n = 0;
    let t0 = 0;
    sock.on("data", (d: Buffer) => {
      if (n === 0) t0 = performance.now();
      n += d.length;
    });
    await new Promise((r) => sock.once("end", r));
    console.log(
      JSON.stringify({ bytes: n, seconds: (performance.now() - t0) / 1000, cpu: cpuSeconds() - c0 }),
    );
    return;
  }
  if (mode === "discard") {
    // gRPC transport alone: the same Pull streams, each piece dropped (no hash, no write).
    const [address, tokenFile, manifestFile] = args as [string, string, string];
    const { readFile } = await import("node:fs/promises");
    const { parseManifestText } = await import("../../lib/weights/manifest.js");
    const { weightsClient } = await import("../../images/inference/puller.js");
    const { tokenMetadata } = await import("../../lib/grpc.js");
    const manifest = parseManifestText(await readFile(manifestFile, "utf8"));
    const token = (await readFile(tokenFile, "utf8")).trim();
    const client = weightsClient(address);
    const c0 = cpuSeconds();
    const t0 = performance.now();
    for (const shard of manifest.shards) {
      const req = { version: manifest.version, shard: shard.file, offset: 0, pullerId: "bench" };
      let n = 0;
      for await (const p of client.pull(req, tokenMetadata(token)) as AsyncIterable<{ data: Uint8Array }>)
        n += p.data.length;
      if (n !== shard.sizeBytes) throw new Error(`${shard.file}: got ${n} of ${shard.sizeBytes} bytes`);
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      JSON.stringify({ seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024, cpu: cpuSeconds() - c0 }),
    );
    client.close();
    return;
  }
  if (mode === "pull") {
    const [address, tokenFile, manifestFile, dir] = args as [string, string, string, string];
    const { readFile } = await import("node:fs/promises");
    const { parseManifestText } = await import("../../lib/weights/manifest.js");
    const { pullVersion, weightsClient } = await import("../../images/inference/puller.js");
    const manifest = parseManifestText(await readFile(manifestFile, "utf8"));
    const token = (await readFile(tokenFile, "utf8")).trim();
    const client = weightsClient(address);
    const c0 = cpuSeconds();
    const t0 = performance.now();
    await pullVersion({
      manifest,
      dir,
      primary: { client, label: "service" },
      token,
      pullerId: "bench",
      metrics: weightsMetrics(createRegistry({ defaultMetrics: false })),
      logger: silentLogger(),
    });
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      JSON.stringify({ seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024, cpu: cpuSeconds() - c0 }),
    );
    client.close();
    return;
  }
  if (mode === "sidecar") {
    const [address, tokenFile, root, id] = args as [string, string, string, string];
    const { main } = await import("../../images/inference/main.js");
    const env = {
      L0_SIDECAR_WEIGHTS_ADDRESS: address,
      L0_SIDECAR_TOKEN_FILE: tokenFile,
      L0_SIDECAR_ROOT: root,
      L0_SIDECAR_ENGINE: "none",
      L0_SIDECAR_ENGINE_ID: id,
      L0_SIDECAR_HOST: "127.0.0.1",
      L0_SIDECAR_PEER_PORT: "0",
      L0_SIDECAR_METRICS_PORT: "0",
      L0_SIDECAR_LOG_LEVEL: "warn",
      L0_SIDECAR_REPORT_INTERVAL: "1s",
      POD_IP: "127.0.0.1",
    };
    await main({}, env);
    return;
  }
  throw new Error(`unknown child mode ${mode}`);
}

// ---------------------------------------------------------------- parent
/** Raw TCP ceiling: this process writes `total` bytes in 4 MiB writes on one connection; a child reads them. */
/** CPU seconds (user + system) this process has used. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

interface Measured {
  bytesPerSecond: number;
  /** CPU seconds of both ends (sender here, receiver in the child) per GB moved. */
  cpuPerGB: number;
}

async function tcpCeiling(total: number): Promise<Measured> {
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
  const port = (server.address() as net.AddressInfo).port;
  const cpu0 = cpuSeconds();
  const out = JSON.parse(await child("tcp-recv", [String(port)])) as {
    bytes: number;
    seconds: number;
    cpu: number;
  };
  const cpu = cpuSeconds() - cpu0 + out.cpu;
  server.close();
  if (out.bytes !== total) throw new Error(`tcp: got ${out.bytes} of ${total} bytes`);
  return { bytesPerSecond: total / out.seconds, cpuPerGB: cpu / (total / 1e9) };
}

interface Service {
  address: string;
  store: VersionStore;
  engines: EngineRegistry;
  stop(): Promise<void>;
}

async function startService(dir: string, token: string, fanout: number): Promise<Service> {
  const logger = silentLogger();
  const engines = new EngineRegistry({ logger });
  const store = new VersionStore({ dir, logger, keep: 100 });
  await store.scan();
  const metrics = weightsMetrics(createRegistry({ defaultMetrics: false }));
  const service = new WeightService({ store, token, logger, metrics, fanout, registry: engines });
  const server = await startServer((s) => service.addToServer(s), { host: "127.0.0.1", port: 0 });
  return { address: server.address, store, engines, stop: () => server.stop(100) };
}

function memAvailable(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

async function parentMain(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), "l0-bench-weights-"));
  const fsInfo = statfsSync(base);
  const free = fsInfo.bavail * fsInfo.bsize;
  const asked = arg("gib", 2);
  const nShards = arg("shards", 8);
  const repeat = arg("repeat", 3);
  const fanout = arg("fanout", 2);
  let gib = asked;
  const notes: string[] = [];
  // Disk: the export plus one pulled copy on disk (the disk-bound reference pull).
  while (gib > 0.125 && gib * GiB * 3 > free * 0.8) gib /= 2;
  if (gib !== asked)
    notes.push(`scaled down to ${gib} GiB: ${round(free / GiB, 1)} GiB free under ${tmpdir()}`);
  // Staging in RAM (/dev/shm, like an emptyDir with medium Memory): five copies at the peak.
  const shm = existsSync("/dev/shm") && memAvailable() > gib * GiB * 5 * 1.5 ? "/dev/shm" : tmpdir();
  if (shm !== "/dev/shm") notes.push(`staging on disk (${tmpdir()}): too little free memory for /dev/shm`);
  const total = gib * GiB;
  const stage = await mkdtemp(join(shm, "l0-bench-weights-stage-"));
  try {
    const exportDir = join(base, "export");
    const t0 = performance.now();
    const m1 = await exportCheckpoint(exportDir, 1, total, nShards);
    const bytes = m1.shards.reduce((a, s) => a + s.sizeBytes, 0);
    console.log(
      `exported ${round(bytes / GiB, 2)} GiB in ${nShards} shards (${m1.chunkBytes / MiB} MiB chunks) in ${round((performance.now() - t0) / 1000, 1)} s; staging in ${shm}`,
    );
    const token = randomBytes(16).toString("hex");
    const tokenFile = join(base, "token");
    await writeFile(tokenFile, token);
    const manifestFile = join(exportDir, "1", "manifest.json");
    const svc = await startService(exportDir, token, fanout);

    const tcp: Measured[] = [];
    const pulls: Measured[] = [];
    let maxRss = 0;
    const pull = async (dir: string, mode = "pull"): Promise<Measured> => {
      const cpu0 = cpuSeconds();
      await mkdir(dir);
      const out = JSON.parse(await child(mode, [svc.address, tokenFile, manifestFile, dir])) as {
        seconds: number;
        maxRssMiB: number;
        cpu: number;
      };
      const cpu = cpuSeconds() - cpu0 + out.cpu;
      await rm(dir, { recursive: true, force: true });
      maxRss = Math.max(maxRss, out.maxRssMiB);
      return { bytesPerSecond: bytes / out.seconds, cpuPerGB: cpu / (bytes / 1e9) };
    };
    const transport: Measured[] = [];
    const rate = (m: Measured) =>
      `${round(m.bytesPerSecond / 1e9, 2)} GB/s (${round(m.cpuPerGB, 2)} CPU-s/GB)`;
    for (let r = 0; r < repeat; r++) {
      tcp.push(await tcpCeiling(bytes));
      transport.push(await pull(join(stage, `discard-${r}`), "discard"));
      pulls.push(await pull(join(stage, `pull-${r}`)));
      console.log(
        `round ${r + 1}: raw TCP ${rate(tcp[r]!)}, gRPC Pull alone (pieces dropped) ${rate(transport[r]!)}, ` +
          `weight service -> verified staging ${rate(pulls[r]!)}`,
      );
    }
    const diskPull = await pull(join(base, "pull-disk"));
    console.log(
      `one pull into ${tmpdir()} (disk page cache): ${round(diskPull.bytesPerSecond / 1e9, 2)} GB/s`,
    );
    await svc.stop();

    // Fan-out: a fresh service over an empty dir; N sidecars (child processes, engine "none")
    // connect, then the version is published; wall time until every engine serves it.
    let round_ = 0;
    const fanoutSeconds = async (n: number, k: number): Promise<number> => {
      const dir = join(base, `export-${round_++}`);
      await mkdir(dir);
      const s = await startService(dir, token, k);
      const roots = await Promise.all(
        Array.from({ length: n }, (_, i) => mkdtemp(join(stage, `sidecar-${n}-${i}-`))),
      );
      const kids = roots.map((root, i) => spawnChild("sidecar", [s.address, tokenFile, root, `e${n}-${i}`]));
      try {
        const deadline = Date.now() + 60_000;
        while (s.engines.engines().length < n) {
          if (Date.now() > deadline)
            throw new Error(`only ${s.engines.engines().length} of ${n} sidecars reported`);
          await new Promise((r) => setTimeout(r, 50));
        }
        await republish(exportDir, m1, dir, 1);
        const t = performance.now();
        await s.store.scan();
        const res = await s.engines.awaitAllServe(1, { timeoutMs: 600_000, minEngines: n });
        if (!res.ok) throw new Error(res.message);
        return (performance.now() - t) / 1000;
      } finally {
        for (const k of kids) k.proc.kill("SIGTERM");
        await Promise.allSettled(kids.map((k) => k.done));
        await s.stop();
        await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
      }
    };
    const s1 = await fanoutSeconds(1, fanout);
    console.log(`1 sidecar serves a new version in ${round(s1, 2)} s`);
    const s4 = await fanoutSeconds(4, fanout);
    console.log(`4 sidecars (fan-out ${fanout}) serve a new version in ${round(s4, 2)} s`);
    const s4star = await fanoutSeconds(4, 0);
    console.log(`4 sidecars without fan-out (all pull from the service) in ${round(s4star, 2)} s`);

    const gbps = median(pulls.map((m) => m.bytesPerSecond)) / 1e9;
    const grpcGbps = median(transport.map((m) => m.bytesPerSecond)) / 1e9;
    const grpcCpu = median(transport.map((m) => m.cpuPerGB));
    const tcpGbps = median(tcp.map((m) => m.bytesPerSecond)) / 1e9;
    const tcpCpu = median(tcp.map((m) => m.cpuPerGB));
    const pullCpu = median(pulls.map((m) => m.cpuPerGB));
    const load = loadavg()[0]!;
    console.log(
      `median of ${repeat}: weight service ${round(gbps, 3)} GB/s, raw TCP ${round(tcpGbps, 3)} GB/s, tcp_ratio ${round(gbps / tcpGbps, 3)}; seconds_4 / seconds_1 = ${round(s4 / s1, 2)}`,
    );
    console.log(
      `CPU per GB (both ends): raw TCP ${round(tcpCpu, 2)} s, weight service + verifying puller ${round(pullCpu, 2)} s; ` +
        `cpu_ratio ${round(tcpCpu / pullCpu, 3)} (CPU cost of raw TCP / weight service per byte); load average ${round(load, 1)} on ${availableParallelism()} CPUs`,
    );
    console.log(
      `gRPC transport alone: ${round(grpcGbps, 3)} GB/s, ${round(grpcCpu, 2)} CPU-s/GB (grpc_ratio ${round(grpcGbps / tcpGbps, 3)} of raw TCP): ` +
        `the ceiling of a verified pull over gRPC here`,
    );
    console.log(`peak RSS of a pulling process: ${round(maxRss, 0)} MiB (it never holds a whole shard)`);
    for (const n of notes) console.log(`note: ${n}`);
    emit({
      bench: "weights",
      bytes,
      shards: nShards,
      chunk_bytes: m1.chunkBytes,
      cpus: availableParallelism(),
      tcp_gbps: round(tcpGbps, 3),
      gbps: round(gbps, 3),
      tcp_ratio: round(gbps / tcpGbps, 3),
      grpc_gbps: round(grpcGbps, 3),
      grpc_ratio: round(grpcGbps / tcpGbps, 3),
      grpc_cpu_s_per_gb: round(grpcCpu, 3),
      tcp_cpu_s_per_gb: round(tcpCpu, 3),
      pull_cpu_s_per_gb: round(pullCpu, 3),
      cpu_ratio: round(tcpCpu / pullCpu, 3),
      loadavg_1m: round(load, 2),
      disk_pull_gbps: round(diskPull.bytesPerSecond / 1e9, 3),
      pull_max_rss_mib: round(maxRss, 0),
      seconds_1: round(s1, 3),
      seconds_4: round(s4, 3),
      fanout,
      fanout_ratio: round(s4 / s1, 3),
      seconds_4_no_fanout: round(s4star, 3),
      ...(notes.length ? { note: notes.join("; ") } : {}),
    });
  } finally {
    await rm(base, { recursive: true, force: true });
    await rm(stage, { recursive: true, force: true });
  }
}

const ci = process.argv.indexOf("--child");
if (ci >= 0) await childMain(process.argv[ci + 1]!, process.argv.slice(ci + 2));
else await parentMain();
