// Worker benchmark: sandboxed kernel cold start (with the same kernel unsandboxed as the
// baseline), warm-pool acquire, cell round trip (sandboxed vs unsandboxed), episodes per second
// at K = 64 with a scripted engine (warm pool vs a cold kernel per episode), and kernel RSS.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { silentLogger } from "../../lib/log.js";
import { l0 } from "../../lib/proto.js";
import { runEpisode } from "../../images/worker/agent/episode.js";
import { EngineClient } from "../../images/worker/engine.js";
import { encodeFrame, FrameDecoder } from "../../images/worker/sandbox/framing.js";
import { kernelScriptPath } from "../../images/worker/sandbox/host.js";
import { type Kernel } from "../../images/worker/sandbox/kernel.js";
import { KernelPool } from "../../images/worker/sandbox/pool.js";
import { NoTools } from "../../images/worker/tools.js";
import { startScriptedEngine, turn } from "../worker/fixtures/engine.js";
import { testHost, testMetrics } from "../worker/fixtures/sandbox.js";
import { emit, median, round, summarize } from "./stats.js";
import { agentSettings } from "../fixtures/runs.js";

const K = 64;
const ms = (s: number): number => round(s, 3);
const noTool = (): Promise<string> => Promise.resolve("");

/** The kernel program without bwrap/setpriv/cgroups: the floor the sandbox adds to. */
async function bareKernel(): Promise<{
  ready: number;
  exec: (code: string) => Promise<void>;
  kill: () => void;
}> {
  const t0 = performance.now();
  const child = spawn("/usr/bin/python3", ["-I", "-B", kernelScriptPath(), "--as", String(1 << 30)], {
    stdio: "pipe",
    env: {},
  });
  const dec = new FrameDecoder();
  let waiter: (() => void) | null = null;
  child.stdout.on("data", (c: Buffer) => {
    for (const f of dec.push(c)) if (f.t === "ready" || f.t === "result") waiter?.();
  });
  await new Promise<void>((r) => (waiter = r));
  const ready = performance.now() - t0;
  let id = 0;
  return {
    ready,
    exec: (code) =>
      new Promise<void>((r) => {
        waiter = r;
        child.stdin.write(encodeFrame({ t: "exec", id: `n${++id}`, code, timeout: 10 }));
      }),
    kill: () => child.kill("SIGKILL"),
  };
}

function rssKiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const host = testHost({ memoryBytes: 1 << 30, processes: 64 });
const { metrics } = testMetrics();
console.log(`sandbox: cgroup ${host.cgroups.version}, weaknesses: ${host.weaknesses.join("; ") || "none"}`);

// 1. Cold start: sandboxed vs bare, interleaved so machine noise hits both alike.
const cold: number[] = [];
const bare: number[] = [];
{
  const pool = new KernelPool({ host, size: 0, logger: silentLogger(), onStart: (s) => cold.push(s * 1000) });
  for (let i = 0; i < 40; i++) {
    const k = await pool.acquire();
    await pool.discard(k);
    const b = await bareKernel();
    bare.push(b.ready);
    b.kill();
  }
  await pool.close();
}
const coldS = summarize(cold);
const bareS = summarize(bare);
console.log(
  `cold start (bwrap + Python ready): p50 ${ms(coldS.p50)} ms, p99 ${ms(coldS.p99)} ms (n=${coldS.n})`,
);
console.log(`  baseline, same kernel without sandbox: p50 ${ms(bareS.p50)} ms, p99 ${ms(bareS.p99)} ms`);

// 2. Warm-pool acquire: the pool is refilled before each take.
const acquire: number[] = [];
{
  const pool = new KernelPool({ host, size: 4, logger: silentLogger() });
  await pool.fill();
  for (let i = 0; i < 60; i++) {
    while (pool.idle < 4) await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    const k = await pool.acquire();
    acquire.push(performance.now() - t0);
    await pool.discard(k);
  }
  await pool.close();
}
const acqS = summarize(acquire);
console.log(`warm-pool acquire: p50 ${ms(acqS.p50)} ms, p99 ${ms(acqS.p99)} ms (n=${acqS.n})`);

// 3. Cell round trip of `x = 1 + 1`: sandboxed kernel vs the bare kernel.
const cell: number[] = [];
const cellBare: number[] = [];
{
  const pool = new KernelPool({ host, size: 1, logger: silentLogger() });
  const k: Kernel = await pool.acquire();
  k.init([], null, 4000);
  const b = await bareKernel();
  for (let i = 0; i < 200; i++) {
    await k.execute("x = 1 + 1", { timeoutMs: 10_000, onTool: noTool });
    await b.exec("x = 1 + 1");
  }
  for (let i = 0; i < 3000; i++) {
    let t0 = performance.now();
    await k.execute("x = 1 + 1", { timeoutMs: 10_000, onTool: noTool });
    cell.push(performance.now() - t0);
    t0 = performance.now();
    await b.exec("x = 1 + 1");
    cellBare.push(performance.now() - t0);
  }
  b.kill();
  await pool.discard(k);
  await pool.close();
}
const cellS = summarize(cell);
const cellBareS = summarize(cellBare);
console.log(`cell round trip (x = 1 + 1): p50 ${ms(cellS.p50)} ms, p99 ${ms(cellS.p99)} ms (n=${cellS.n})`);
console.log(
  `  baseline, bare kernel without the worker's checks: p50 ${ms(cellBareS.p50)} ms, p99 ${ms(cellBareS.p99)} ms`,
);

// 4. Episodes per second at K = 64 with a scripted engine (2 turns: compute, submit), and RSS.
const engine = await startScriptedEngine((_p, n) =>
  n === 0 ? turn("compute", "x = sum(range(1000))\nprint(x)") : turn("answer", "submit_final_answer(x)"),
);
const client = new EngineClient({
  baseUrl: engine.url,
  timeoutMs: 30_000,
  attempts: 2,
  backoffMs: 10,
  maxConcurrent: K,
});
let taskSeq = 0;
const task = (): l0.v1.ITask => ({
  taskId: `b${++taskSeq}`,
  leaseId: `lease-b${taskSeq}`,
  prompt: `question ${taskSeq}`,
  agent: agentSettings({
    maxTurns: 4,
    maxTokensPerTurn: 256,
    contextBudget: 100_000,
    tools: [],
    cellTimeoutSeconds: 10,
  }),
});
async function episodesPerSecond(pool: KernelPool, n: number): Promise<{ eps: number; answered: number }> {
  let answered = 0;
  let next = 0;
  const t0 = performance.now();
  const lane = async (): Promise<void> => {
    while (next < n) {
      next++;
      const tr = await runEpisode(
        task(),
        {
          kernels: pool,
          engine: client,
          tools: new NoTools(),
          metrics,
          logger: silentLogger(),
          workerId: "bench",
          observationChars: 4000,
          maxEpisodeSeconds: 60,
        },
        { signal: new AbortController().signal },
      );
      if (tr.end === l0.v1.EpisodeEnd.EPISODE_END_ANSWERED) answered++;
    }
  };
  await Promise.all(Array.from({ length: K }, lane));
  return { eps: n / ((performance.now() - t0) / 1000), answered };
}

let rssPython = 0;
let rssTree = 0;
// One wave of K episodes, each on its own kernel: from a full warm pool vs a cold kernel each.
// Rounds alternate so load on this shared machine hits both alike; the pool refills untimed.
const warmRuns: { eps: number; answered: number }[] = [];
const coldRuns: { eps: number; answered: number }[] = [];
{
  const pool = new KernelPool({ host, size: K, logger: silentLogger() });
  await pool.fill();
  // RSS of K live kernels: the Python process alone, and the whole sandbox tree (bwrap too).
  const kernels = await Promise.all(Array.from({ length: K }, () => pool.acquire()));
  for (const k of kernels) k.init([], null, 4000);
  await Promise.all(
    kernels.map((k) => k.execute("x = sum(range(1000))", { timeoutMs: 10_000, onTool: noTool })),
  );
  const per = kernels.map((k) => k.pids().map(rssKiB));
  rssPython = summarize(per.map((p) => Math.max(...p) / 1024)).p50;
  rssTree = summarize(per.map((p) => p.reduce((a, b) => a + b, 0) / 1024)).p50;
  await Promise.all(kernels.map((k) => pool.discard(k)));
  const coldPool = new KernelPool({ host, size: 0, logger: silentLogger() });
  for (let round_ = 0; round_ < 3; round_++) {
    await pool.fill();
    while (pool.idle < K) await new Promise((r) => setTimeout(r, 20));
    // As in a worker, the pool starts replacements in the background while the wave runs.
    warmRuns.push(await episodesPerSecond(pool, K));
    coldRuns.push(await episodesPerSecond(coldPool, K));
  }
  await pool.close();
  await coldPool.close();
}
const warm = {
  eps: median(warmRuns.map((r) => r.eps)),
  answered: warmRuns.reduce((a, r) => a + r.answered, 0),
};
const coldEps = {
  eps: median(coldRuns.map((r) => r.eps)),
  answered: coldRuns.reduce((a, r) => a + r.answered, 0),
};
await engine.close();
console.log(
  `kernel RSS with ${K} live kernels (median): Python ${round(rssPython, 1)} MiB, whole sandbox tree ${round(rssTree, 1)} MiB`,
);
console.log(
  `episodes/s at K=${K} (2 turns, scripted engine; median of 3 waves of ${K}): warm pool ${round(warm.eps, 1)} (${warm.answered}/${3 * K} answered)`,
);
console.log(
  `  baseline, a cold kernel per episode: ${round(coldEps.eps, 1)} (${coldEps.answered}/${3 * K} answered)`,
);

emit({
  bench: "worker",
  cgroup: host.cgroups.version,
  cold_start_p50_ms: ms(coldS.p50),
  cold_start_p99_ms: ms(coldS.p99),
  bare_start_p50_ms: ms(bareS.p50),
  sandbox_start_overhead: round(coldS.p50 / bareS.p50, 2),
  warm_acquire_p50_ms: ms(acqS.p50),
  warm_acquire_p99_ms: ms(acqS.p99),
  cell_p50_ms: ms(cellS.p50),
  cell_p99_ms: ms(cellS.p99),
  bare_cell_p50_ms: ms(cellBareS.p50),
  episodes_per_s_k64: round(warm.eps, 1),
  cold_episodes_per_s_k64: round(coldEps.eps, 1),
  warm_vs_cold_episodes: round(warm.eps / coldEps.eps, 2),
  kernel_rss_mib: round(rssPython, 1),
  kernel_tree_rss_mib: round(rssTree, 1),
});
