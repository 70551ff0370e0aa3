// Weight streaming benchmark: exports a synthetic checkpoint (default 2 GiB in 8 shards) and, in
// the same run, measures the raw TCP loopback ceiling (one connection, 4 MiB writes, reader in a
// child process), the gRPC transport alone (the same Pull streams, pieces dropped), one
// subscriber pulling it from the weight service the way a sidecar does (`--transport auto`: over
// the service's bulk channel; a child process that verifies every chunk and writes the shards
// into RAM-backed staging, like a sidecar on an emptyDir with medium Memory; one more pull onto
// disk for reference), the same verified pull over gRPC Pull (`--transport grpc`) and over the
// bench's own plain sockets (its ceiling whatever the transport: test/bench/weights-parts/tcp.ts),
// the scaling of all three with parallel streams and hashing threads, and the wall time for 1 and
// 4 full sidecars (child processes, peer fan-out) to serve a newly published version, with the
// trainer's egress for the 4.
// The bulk and plain-TCP pulls of a round run back to back (which goes first alternates), and the
// ratio is taken per round, then its median: this machine's speed drifts by several times within
// a minute (raw TCP alone from 0.4 to 3.5 GB/s in one run), and a ratio of medians taken rounds
// apart measures that drift as much as the transport.
// Usage: npm run bench -- weights [--gib 2] [--shards 8] [--repeat 5] [--streams N] [--fanout 2]
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statfsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { defaultThreads } from "../../lib/weights/hash-pool.js";
import { type Manifest } from "../../lib/weights/manifest.js";
import { round } from "./stats.js";
import { exportCheckpoint, republish } from "./weights-parts/export.js";
import { type Measured, load, report } from "./weights-parts/report.js";
import { stageCosts } from "./weights-parts/stages.js";
import { startService } from "./weights-parts/service.js";
import { cpuSeconds, rawReceive, rawServer, shardServer, verifiedTcpPull } from "./weights-parts/tcp.js";

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

// ---------------------------------------------------------------- children
async function childMain(mode: string, args: string[]): Promise<void> {
  if (mode === "tcp-recv") {
    console.log(JSON.stringify(await rawReceive(Number(args[0]))));
    return;
  }
  if (mode === "tcp-verified") {
    const [port, manifestFile, dir, streams, threads] = args as [string, string, string, string, string];
    const { readFile } = await import("node:fs/promises");
    const { parseManifestText } = await import("../../lib/weights/manifest.js");
    const manifest = parseManifestText(await readFile(manifestFile, "utf8"));
    const out = await verifiedTcpPull(Number(port), manifest, dir, Number(streams), Number(threads));
    console.log(JSON.stringify({ ...out, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
    return;
  }
  if (mode === "discard" || mode === "pull") {
    const { discardChild, pullChild } = await import("./weights-parts/pull.js");
    console.log(JSON.stringify(await (mode === "pull" ? pullChild(args) : discardChild(args))));
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
      L0_SIDECAR_PEER_BULK_PORT: "0",
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
async function tcpCeiling(total: number): Promise<Measured> {
  const server = await rawServer(total);
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
  return { bytesPerSecond: total / out.seconds, cpuPerGB: cpu / (total / 1e9), load: load() };
}

function memAvailable(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

const rate = (m: Measured) =>
  `${round(m.bytesPerSecond / 1e9, 2)} GB/s (${round(m.cpuPerGB, 2)} CPU-s/GB, load ${m.load})`;

interface Bench {
  base: string;
  stage: string;
  bytes: number;
  manifestFile: string;
  tokenFile: string;
  exportDir: string;
  m1: Manifest;
  maxRss: number;
}

/**
 * One verified pull in a child: from the service at `where` ("pull": as a sidecar does, over the
 * bulk channel `bulk` when given, else gRPC Pull; "discard": gRPC Pull, pieces dropped) or from
 * the bench's plain-socket server ("tcp-verified").
 */
async function pullOnce(
  b: Bench,
  mode: "pull" | "discard" | "tcp-verified",
  to: string,
  where: string,
  streams: number,
  threads: number,
  bulk = "",
): Promise<Measured> {
  const l = load();
  const cpu0 = cpuSeconds();
  const dir = join(to, `${mode}-${streams}-${threads}-${Math.random().toString(36).slice(2)}`);
  await mkdir(dir);
  const args =
    mode === "tcp-verified"
      ? [where, b.manifestFile, dir, String(streams), String(threads)]
      : [
          where,
          b.tokenFile,
          b.manifestFile,
          dir,
          String(streams),
          String(threads),
          bulk ? "auto" : "grpc",
          bulk,
        ];
  const out = JSON.parse(await child(mode, args)) as { seconds: number; maxRssMiB: number; cpu: number };
  const cpu = cpuSeconds() - cpu0 + out.cpu;
  await rm(dir, { recursive: true, force: true });
  b.maxRss = Math.max(b.maxRss, out.maxRssMiB);
  return { bytesPerSecond: b.bytes / out.seconds, cpuPerGB: cpu / (b.bytes / 1e9), load: l };
}

/** Fan-out: a fresh service over an empty dir; n sidecars connect, then the version is published. */
async function fanoutRun(b: Bench, n: number, k: number): Promise<{ seconds: number; egress: number }> {
  const dir = await mkdtemp(join(b.base, `export-${n}-${k}-`));
  const token = readFileSync(b.tokenFile, "utf8");
  const s = await startService(dir, token, k);
  const roots = await Promise.all(
    Array.from({ length: n }, (_, i) => mkdtemp(join(b.stage, `sidecar-${n}-${i}-`))),
  );
  const kids = roots.map((root, i) => spawnChild("sidecar", [s.address, b.tokenFile, root, `e${n}-${i}`]));
  try {
    const deadline = Date.now() + 60_000;
    while (s.engines.engines().length < n) {
      if (Date.now() > deadline)
        throw new Error(`only ${s.engines.engines().length} of ${n} sidecars reported`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await republish(b.exportDir, b.m1, dir, 1);
    const t = performance.now();
    await s.store.scan();
    const res = await s.engines.awaitAllServe(1, { timeoutMs: 600_000, minEngines: n });
    if (!res.ok) throw new Error(res.message);
    return { seconds: (performance.now() - t) / 1000, egress: (await s.sent()) / b.bytes };
  } finally {
    for (const k of kids) k.proc.kill("SIGTERM");
    await Promise.allSettled(kids.map((k) => k.done));
    await s.stop();
    await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
  }
}

async function setup(): Promise<{ b: Bench; notes: string[]; shm: string }> {
  const base = await mkdtemp(join(tmpdir(), "l0-bench-weights-"));
  const fsInfo = statfsSync(base);
  const free = fsInfo.bavail * fsInfo.bsize;
  const asked = arg("gib", 2);
  const nShards = arg("shards", 8);
  let gib = asked;
  const notes: string[] = [];
  // Disk: the export plus one pulled copy on disk (the disk-bound reference pull).
  while (gib > 0.125 && gib * GiB * 3 > free * 0.8) gib /= 2;
  if (gib !== asked)
    notes.push(`scaled down to ${gib} GiB: ${round(free / GiB, 1)} GiB free under ${tmpdir()}`);
  // Staging in RAM (/dev/shm, like an emptyDir with medium Memory): five copies at the peak.
  const shm = existsSync("/dev/shm") && memAvailable() > gib * GiB * 5 * 1.5 ? "/dev/shm" : tmpdir();
  if (shm !== "/dev/shm") notes.push(`staging on disk (${tmpdir()}): too little free memory for /dev/shm`);
  const stage = await mkdtemp(join(shm, "l0-bench-weights-stage-"));
  const exportDir = join(base, "export");
  const t0 = performance.now();
  const m1 = await exportCheckpoint(exportDir, 1, gib * GiB, nShards);
  const bytes = m1.shards.reduce((a, s) => a + s.sizeBytes, 0);
  console.log(
    `exported ${round(bytes / GiB, 2)} GiB in ${nShards} shards (${m1.chunkBytes / MiB} MiB chunks) in ${round((performance.now() - t0) / 1000, 1)} s; staging in ${shm}`,
  );
  const tokenFile = join(base, "token");
  await writeFile(tokenFile, randomBytes(16).toString("hex"));
  const manifestFile = join(exportDir, "1", "manifest.json");
  return { b: { base, stage, bytes, manifestFile, tokenFile, exportDir, m1, maxRss: 0 }, notes, shm };
}

async function parentMain(): Promise<void> {
  const { b, notes } = await setup();
  const repeat = arg("repeat", 5);
  const fanout = arg("fanout", 2);
  const streams = arg("streams", defaultThreads());
  const threads = arg("threads", streams);
  try {
    const svc = await startService(b.exportDir, readFileSync(b.tokenFile, "utf8"), fanout);
    const files = await shardServer(join(b.exportDir, "1"));
    const tcpPort = String((files.address() as net.AddressInfo).port);
    const tcp: Measured[] = [];
    const transport: Measured[] = [];
    const pulls: Measured[] = [];
    const grpcPulls: Measured[] = [];
    const vtcp: Measured[] = [];
    for (let r = 0; r < repeat; r++) {
      tcp.push(await tcpCeiling(b.bytes));
      transport.push(await pullOnce(b, "discard", b.stage, svc.address, streams, 0));
      // Side by side: the bulk and plain-TCP pulls adjacent, which goes first alternating by round.
      const runs = [
        () => pullOnce(b, "pull", b.stage, svc.address, streams, threads, svc.bulk),
        () => pullOnce(b, "pull", b.stage, svc.address, streams, threads),
        () => pullOnce(b, "tcp-verified", b.stage, tcpPort, streams, threads),
      ];
      const got: Measured[] = [];
      for (const k of r % 2 === 0 ? [0, 2, 1] : [1, 2, 0]) got[k] = await runs[k]!();
      const [p, g, t] = got as [Measured, Measured, Measured];
      pulls.push(p);
      grpcPulls.push(g);
      vtcp.push(t);
      console.log(
        `round ${r + 1}: raw TCP ${rate(tcp[r]!)}; gRPC Pull alone ${rate(transport[r]!)}; ` +
          `verified pull (${streams} streams, ${threads} hash threads): bulk channel ${rate(p)}, gRPC Pull ${rate(g)}, plain TCP ${rate(t)}`,
      );
    }
    // Scaling: inline hashing on one stream (the old puller), then 1..N streams with as many threads.
    const scaling: {
      streams: number;
      threads: number;
      gbps: number;
      grpc_gbps: number;
      tcp_gbps: number;
      load: number;
    }[] = [];
    const maxStreams = Math.max(4, streams);
    for (const [s, t] of [
      [1, 0] as const,
      ...[1, 2, 4, 8].filter((n) => n <= maxStreams).map((n) => [n, n] as const),
    ]) {
      const p = await pullOnce(b, "pull", b.stage, svc.address, s, t, svc.bulk);
      const g = await pullOnce(b, "pull", b.stage, svc.address, s, t);
      const v = await pullOnce(b, "tcp-verified", b.stage, tcpPort, s, t);
      scaling.push({
        streams: s,
        threads: t,
        gbps: round(p.bytesPerSecond / 1e9),
        grpc_gbps: round(g.bytesPerSecond / 1e9),
        tcp_gbps: round(v.bytesPerSecond / 1e9),
        load: p.load,
      });
      console.log(
        `scaling: ${s} streams, ${t || "inline"} hash threads: bulk ${rate(p)}, gRPC ${rate(g)}, plain TCP ${rate(v)}`,
      );
    }
    const diskPull = await pullOnce(b, "pull", b.base, svc.address, streams, threads, svc.bulk);
    console.log(`one pull into ${tmpdir()} (disk page cache): ${rate(diskPull)}`);
    files.close();
    await svc.stop();

    const f1 = await fanoutRun(b, 1, fanout);
    console.log(`1 sidecar serves a new version in ${round(f1.seconds, 2)} s (load ${load()})`);
    const f4 = await fanoutRun(b, 4, fanout);
    console.log(
      `4 sidecars (fan-out ${fanout}) serve it in ${round(f4.seconds, 2)} s; the trainer sent ${round(f4.egress, 3)}x the model (load ${load()})`,
    );
    const f4star = await fanoutRun(b, 4, 0);
    console.log(
      `4 sidecars without fan-out in ${round(f4star.seconds, 2)} s; the trainer sent ${round(f4star.egress, 3)}x the model (load ${load()})`,
    );
    const stages = await stageCosts(b.stage, Math.min(b.bytes, GiB));
    console.log(
      `CPU-s/GB per stage on one thread: sha256 ${round(stages.hash, 2)}, copy into a hashing slot ${round(stages.copy, 2)}, ` +
        `write into staging ${round(stages.write, 2)}, read back (engine load from files) ${round(stages.read, 2)} (load ${load()})`,
    );
    report(
      { bytes: b.bytes, shards: b.m1.shards.length, chunkBytes: b.m1.chunkBytes, maxRss: b.maxRss },
      {
        stages,
        tcp,
        transport,
        pulls,
        grpcPulls,
        vtcp,
        scaling,
        diskPull,
        f1,
        f4,
        f4star,
        streams,
        threads,
        fanout,
        repeat,
        notes,
      },
    );
  } finally {
    await rm(b.base, { recursive: true, force: true });
    await rm(b.stage, { recursive: true, force: true });
  }
}

const ci = process.argv.indexOf("--child");
if (ci >= 0) await childMain(process.argv[ci + 1]!, process.argv.slice(ci + 2));
else await parentMain();
