// Runs the adversarial table (cases-walls.ts, cases-channel.ts) on the real sandbox in this process's mode, then whole
// episodes: a kernel flooding the channel while the model is generating must not stop other
// episodes on the same worker (or their timers), and no hostile cell may earn more reward than
// the honest version of the same cell. After every case: the kernel's whole process tree and
// cgroups are gone, no zombie is left for this process (PID 1 in adversarial.test.ts), and a
// fresh kernel still computes. Not a *.test.ts: adversarial.test.ts runs it in both modes.
import { readdirSync } from "node:fs";
import net from "node:net";
import { type AddressInfo } from "node:net";
import { expect } from "chai";
import { silentLogger } from "../../../lib/log.js";
import { l0 } from "../../../lib/proto.js";
import { scoreTrajectory } from "../../../images/trainer/hub/reward.js";
import { agentSettings, resolvedRun } from "../../fixtures/runs.js";
import { runEpisode } from "../../../images/worker/agent/episode.js";
import { EngineClient } from "../../../images/worker/engine.js";
import { renderObservation } from "../../../images/worker/agent/notebook.js";
import { type CellResult, type ToolHandler } from "../../../images/worker/sandbox/kernel.js";
import { type KernelPool } from "../../../images/worker/sandbox/pool.js";
import { NoTools } from "../../../images/worker/tools.js";
import { type ScriptedEngine, startScriptedEngine } from "../fixtures/engine.js";
import { bootTicks, leftoverIn, sandboxNamespace, until, zombies } from "../fixtures/procs.js";
import { testMetrics, testPool } from "../fixtures/sandbox.js";
import { CHANNEL_CASES } from "./cases-channel.js";
import { WALL_CASES } from "./cases-walls.js";
import { type Ctx } from "./helpers.js";
import { FLOOD_EPISODE, REWARD_PAIRS } from "./episodes.js";

const End = l0.v1.EpisodeEnd;
const Exec = l0.v1.ExecOutcome;
const SECRET = process.env.L0_TEST_SECRET ?? "l0-test-secret-" + Math.random().toString(36).slice(2);
const MODE = `${process.getuid?.() === 0 ? "strict" : "weak"}, uid ${process.getuid?.()}, pid ${process.pid}`;

const tools =
  (hang: boolean): ToolHandler =>
  (name, arg) => {
    if (hang) return new Promise(() => undefined);
    if (name !== "search") return Promise.reject(new Error(`unknown tool ${name}`));
    return Promise.resolve(`results for ${arg}`);
  };

describe(`worker sandbox: adversarial agent code (${MODE})`, function () {
  this.timeout(60_000);
  let pool: KernelPool;
  let server: net.Server;
  let ctx: Ctx;

  before(async () => {
    process.env.L0_WORKER_TEST_SECRET = SECRET;
    ({ pool } = testPool(2));
    await pool.fill();
    server = net.createServer((s) => s.end("hello from the host\n"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    ctx = { port: (server.address() as AddressInfo).port, secret: SECRET };
  });
  after(async () => {
    await pool.close();
    server.close();
    await noZombies();
  });

  for (const c of [...WALL_CASES, ...CHANNEL_CASES]) {
    it(`contains: ${c.name}`, async () => {
      const k = await pool.acquire();
      const ns = sandboxNamespace(k);
      let gone = false;
      try {
        k.init(["search"], null, 2000);
        const code = typeof c.code === "function" ? c.code(ctx) : c.code;
        const run = (cell: string): Promise<CellResult> =>
          k.execute(cell, { timeoutMs: c.timeoutMs ?? 5000, onTool: tools(c.hangingTools ?? false) });
        const r = await run(code);
        const next = c.next === undefined ? null : await run(c.next);
        c.check(r, renderObservation(r, 2000).text, ctx, next);
      } finally {
        gone = await k.kill();
      }
      const killed = bootTicks();
      // Nothing of the kernel outlives it: its pid namespace is empty, its cgroups are gone.
      expect(gone, "kill() verified the tree and cgroups gone").to.equal(true);
      // The namespace's last process may still be exiting when kill() returns (a kernel that
      // ended by itself leaves the sandbox's init to PID 1 to reap): wait a little, then judge.
      const left = (): number[] => leftoverIn(ns, killed, pool.live());
      await until(() => left().length === 0, "the sandbox's processes to exit", 3000).catch(() => undefined);
      expect(left(), "processes left in the sandbox").to.deep.equal([]);
      expect(leftoverCgroups(k.name)).to.deep.equal([]);
      await noZombies();
      // The worker is healthy: a fresh kernel computes.
      const fresh = await pool.acquire();
      try {
        fresh.init([], null, 2000);
        const ok = await fresh.execute("1 + 1", { timeoutMs: 5000, onTool: tools(false) });
        expect(ok.result).to.equal("2");
      } finally {
        await pool.discard(fresh);
      }
    });
  }
});

describe(`worker sandbox: hostile episodes (${MODE})`, function () {
  this.timeout(120_000);
  let pool: KernelPool;
  let engine: ScriptedEngine;
  const releases = new Map<string, () => void>();
  const held = new Map<string, Promise<void>>();

  before(async () => {
    ({ pool } = testPool(3));
    engine = await startScriptedEngine((p, n) => FLOOD_EPISODE.script(p, n) ?? REWARD_PAIRS.script(p, n), {
      // The flooding episode's model "generates" until the calm episodes are done.
      delayFor: (p, n) => (p.includes("[task:flood]") && n === 1 ? (held.get("flood") ?? null) : null),
    });
  });
  after(async () => {
    for (const r of releases.values()) r();
    await pool.close();
    await engine.close();
    await noZombies();
  });

  const run = (name: string, agent: l0.v1.IAgentSettings = {}): Promise<l0.v1.ITrajectory> =>
    runEpisode(
      {
        taskId: name,
        leaseId: `lease-${name}`,
        prompt: `[task:${name}] What is 6 * 7?`,
        agent: agentSettings({
          maxTurns: 6,
          maxTokensPerTurn: 4096,
          contextBudget: 1 << 20,
          tools: [],
          cellTimeoutSeconds: 2,
          ...agent,
        }),
      },
      {
        kernels: pool,
        engine: new EngineClient({
          baseUrl: engine.url,
          timeoutMs: 60_000,
          attempts: 1,
          backoffMs: 10,
          maxConcurrent: 8,
        }),
        tools: new NoTools(),
        metrics: testMetrics().metrics,
        logger: silentLogger(),
        workerId: "w-adv",
        observationChars: 2000,
        maxEpisodeSeconds: 120,
      },
      { signal: new AbortController().signal },
    );

  it("a kernel flooding the channel while its model generates stops no other episode, nor their timers", async () => {
    held.set("flood", new Promise((r) => releases.set("flood", r)));
    const flood = run("flood");
    // Each calm episode has a cell that only the worker's hard-kill timer can end.
    const calm = await Promise.all([run("calm-1"), run("calm-2")]);
    releases.get("flood")!();
    for (const tr of calm) {
      expect(tr.end, tr.endDetail ?? "").to.equal(End.EPISODE_END_ANSWERED);
      expect(tr.finalAnswer).to.equal("42");
      expect(tr.turns![1]!.outcome).to.equal(Exec.EXEC_OUTCOME_TIMEOUT);
      expect(tr.turns![1]!.observation).to.match(/did not stop at its 2 s deadline/);
    }
    // The flooding kernel is killed as its flood arrives; the episode ends as the agent's error
    // and none of its cells keeps an execution outcome.
    const f = await flood;
    expect(f.end, f.endDetail ?? "").to.equal(End.EPISODE_END_AGENT_ERROR);
    expect(f.endDetail).to.match(/broke its kernel's channel protocol/);
    expect(f.turns!.map((t) => t.outcome)).to.not.include(Exec.EXEC_OUTCOME_OK);
  });

  for (const pair of REWARD_PAIRS.pairs) {
    it(`earns no more than the honest cell: ${pair.name}`, async () => {
      const [honest, hostile] = [await run(`honest-${pair.key}`), await run(`hostile-${pair.key}`)];
      const score = (tr: l0.v1.ITrajectory): number =>
        scoreTrajectory(tr, [pair.truth], resolvedRun().spec.reward).total;
      const detail = (tr: l0.v1.ITrajectory): string =>
        `${tr.endDetail} | ${tr.turns!.map((t) => `${Exec[t.outcome ?? 0]}: ${t.observation}`).join(" | ")}`;
      expect(honest.end, detail(honest)).to.equal(End.EPISODE_END_ANSWERED);
      expect(score(hostile), `hostile ${detail(hostile)}\nhonest ${detail(honest)}`).to.be.at.most(
        score(honest) + 1e-9,
      );
    });
  }
});

/** Zombies are reaped (by this process or, as in a pod, by tini as PID 1) soon after they appear. */
const noZombies = (): Promise<void> =>
  until(() => zombies().length === 0, `zombies to be reaped (${zombies().join(", ")})`, 5000);

function leftoverCgroups(name: string): string[] {
  const out: string[] = [];
  for (const root of ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup"]) {
    try {
      const walk = (dir: string, depth: number): void => {
        for (const e of readdirSync(dir, { withFileTypes: true })) {
          if (!e.isDirectory()) continue;
          if (e.name === name) out.push(`${dir}/${e.name}`);
          else if (depth < 3) walk(`${dir}/${e.name}`, depth + 1);
        }
      };
      walk(root, 0);
    } catch {
      // No such controller here.
    }
  }
  return out;
}
