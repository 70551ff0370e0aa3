// The worker loop against a real gRPC Rollout server on loopback: K concurrent episodes, leases
// and heartbeats, idempotent submit with retries, reconnect with backoff, and drain.
import { expect } from "chai";
import { Writable } from "node:stream";
import { createLogger, silentLogger } from "../../lib/log.js";
import { l0 } from "../../lib/proto.js";
import { runEpisode } from "../../images/worker/agent/episode.js";
import { EngineClient } from "../../images/worker/engine.js";
import { HubClient } from "../../images/worker/hub.js";
import { type EpisodeRunner, Worker, backoffDelay, heartbeatDelay } from "../../images/worker/worker.js";
import { NoTools } from "../../images/worker/tools.js";
import { startScriptedEngine, turn } from "./fixtures/engine.js";
import { type TestHub, startTestHub, task } from "./fixtures/hub.js";
import { testMetrics, testPool } from "./fixtures/sandbox.js";

const End = l0.v1.EpisodeEnd;

async function until(cond: () => boolean, ms = 10_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An episode stand-in that takes `ms` (or stops when aborted), for loop-level tests. */
const sleeper =
  (ms: (t: l0.v1.ITask) => number, seen: { max: number; now: number }): EpisodeRunner =>
  async (t, ctl) => {
    seen.now++;
    seen.max = Math.max(seen.max, seen.now);
    try {
      const aborted = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), ms(t));
        ctl.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      return {
        trajectoryId: t.leaseId,
        taskId: t.taskId,
        leaseId: t.leaseId,
        workerId: "w",
        end: aborted ? End.EPISODE_END_WORKER_SHUTDOWN : End.EPISODE_END_ANSWERED,
        hasFinalAnswer: !aborted,
        finalAnswer: aborted ? "" : "42",
        turns: [],
      };
    } finally {
      seen.now--;
    }
  };

const OPTS = {
  workerId: "w-test",
  episodes: 3,
  heartbeatMs: 100,
  leaseWaitMs: 50,
  backoffMs: 20,
  backoffMaxMs: 200,
  submitAttempts: 5,
};

describe("worker loop: pure timing decisions", () => {
  it("backs off exponentially within [d/2, d], capped", () => {
    expect(backoffDelay(1, 100, 1000, 0)).to.equal(50);
    expect(backoffDelay(1, 100, 1000, 1)).to.equal(100);
    expect(backoffDelay(4, 100, 1000, 1)).to.equal(800);
    expect(backoffDelay(10, 100, 1000, 1)).to.equal(1000);
  });
  it("heartbeats sooner when a lease would expire before three beats", () => {
    expect(heartbeatDelay(10_000, 0, [60_000])).to.equal(10_000);
    expect(heartbeatDelay(10_000, 0, [9_000])).to.equal(3_000);
    expect(heartbeatDelay(10_000, 0, [100])).to.equal(200);
    expect(heartbeatDelay(10_000, 0, [])).to.equal(10_000);
  });
});

describe("worker loop: against a gRPC Rollout server", function () {
  this.timeout(60_000);
  let hub: TestHub;
  let client: HubClient;

  beforeEach(async () => {
    hub = await startTestHub();
    client = new HubClient({ address: hub.address, token: hub.token, timeoutMs: 5000 });
  });
  afterEach(async () => {
    client.close();
    await hub.stop();
  });

  const worker = (run: EpisodeRunner, over: Partial<typeof OPTS> = {}) => {
    const { metrics, registry } = testMetrics();
    const w = new Worker({ ...OPTS, ...over }, { hub: client, run, metrics, logger: silentLogger() });
    return { w, metrics, registry };
  };

  it("runs at most K episodes at once and submits every task once", async () => {
    hub.add(Array.from({ length: 10 }, (_, i) => task(`t${i}`, `q${i}`)));
    const seen = { max: 0, now: 0 };
    const { w, registry } = worker(sleeper(() => 60, seen));
    w.start();
    await until(() => hub.submitted.size === 10, 10_000, "10 submits");
    await w.drain(1000);
    expect(seen.max).to.equal(3);
    expect([...hub.submitted.values()].map((t) => t.taskId).sort()).to.deep.equal(
      Array.from({ length: 10 }, (_, i) => `t${i}`).sort(),
    );
    const text = await registry.metrics();
    expect(text).to.match(/l0_episodes_total\{outcome="answered"\} 10/);
    expect(text).to.match(/l0_worker_episodes_active 0/);
  });

  it("reconnects with backoff after the hub fails, and retries a failed submit idempotently", async () => {
    hub.failNext("lease", 3);
    hub.failNext("submit", 2);
    hub.add([task("t1", "q1")]);
    const seen = { max: 0, now: 0 };
    const { w, registry } = worker(sleeper(() => 10, seen));
    w.start();
    await until(() => hub.submitted.size === 1, 10_000, "the submit");
    await w.drain(1000);
    expect(hub.submitCalls).to.equal(3);
    const text = await registry.metrics();
    expect(text).to.match(/l0_worker_hub_errors_total\{call="lease"\} 3/);
    expect(text).to.match(/l0_worker_hub_errors_total\{call="submit"\} 2/);
  });

  it("logs a lease outage once at warn, repeats at debug, and its end once at info", async () => {
    hub.failNext("lease", 3);
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(
          ...chunk
            .toString()
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l) as Record<string, unknown>),
        );
        done();
      },
    });
    const logger = createLogger({ component: "worker", format: "json", level: "debug", stream });
    let t = 0;
    const { metrics } = testMetrics();
    const w = new Worker(OPTS, {
      hub: client,
      run: sleeper(() => 10, { max: 0, now: 0 }),
      metrics,
      logger,
      now: () => (t += 1000),
    });
    w.start();
    await until(() => lines.some((l) => l.message === "leasing recovered"), 10_000, "recovery");
    await w.drain(1000);
    const lease = lines.filter((l) => /^leas(e|ing) /.test(String(l.message)));
    expect(lease.map((l) => [l.level, l.message, l.failures])).to.deep.equal([
      ["warn", "lease failed, backing off", 1],
      ["debug", "lease failed, backing off", 2],
      ["debug", "lease failed, backing off", 3],
      ["info", "leasing recovered", 3],
    ]);
    expect(lease[0]).to.include.keys("error", "delayMs");
    expect(lease[3]!.downMs).to.equal(3000);
  });

  it("keeps going with a wrong token (UNAUTHENTICATED) without crashing, and is not ready", async () => {
    const bad = new HubClient({ address: hub.address, token: "wrong", timeoutMs: 2000 });
    const { metrics } = testMetrics();
    const w = new Worker(OPTS, {
      hub: bad,
      run: sleeper(() => 1, { max: 0, now: 0 }),
      metrics,
      logger: silentLogger(),
    });
    hub.add([task("t1", "q1")]);
    w.start();
    await new Promise((r) => setTimeout(r, 200));
    expect(w.connected).to.equal(false);
    expect(hub.queued()).to.equal(1);
    await w.drain(500);
    bad.close();
  });

  it("heartbeats leases and stops an episode whose lease was lost, without submitting it", async () => {
    hub.add([task("t1", "q1")]);
    const seen = { max: 0, now: 0 };
    const { w, registry } = worker(sleeper(() => 20_000, seen));
    w.start();
    await until(() => hub.leased.size === 1, 5000, "a lease");
    const leaseId = [...hub.leased.keys()][0]!;
    await until(() => hub.heartbeats >= 2, 5000, "heartbeats");
    hub.expire(leaseId);
    await until(() => w.active === 0, 5000, "the episode to stop");
    await w.drain(500);
    expect(hub.submitted.size).to.equal(0);
    expect(await registry.metrics()).to.match(/l0_episodes_total\{outcome="lease_expired"\} 1/);
  });

  it("drains: finishes what fits in the grace period, releases the rest, leases nothing more", async () => {
    hub.add([task("quick", "q"), task("slow", "s"), task("slow2", "s2"), task("later", "l")]);
    const seen = { max: 0, now: 0 };
    const { w, registry } = worker(sleeper((t) => (t.taskId === "quick" ? 100 : 30_000), seen));
    w.start();
    await until(() => w.active === 3, 5000, "3 episodes");
    const t0 = Date.now();
    await w.drain(600);
    expect(Date.now() - t0).to.be.lessThan(5000);
    expect([...hub.submitted.values()].map((t) => t.taskId)).to.deep.equal(["quick"]);
    expect(hub.released).to.have.length(2);
    // Nothing lost: every task is submitted or back in the queue.
    expect(hub.submitted.size + hub.queued()).to.equal(4);
    expect(hub.leased.size).to.equal(0);
    expect(await registry.metrics()).to.match(/l0_episodes_total\{outcome="worker_shutdown"\} 2/);
  });

  it("pauses leasing and reports unready while the sandbox keeps failing", async () => {
    hub.add(Array.from({ length: 20 }, (_, i) => task(`f${i}`, `q${i}`)));
    const failing: EpisodeRunner = (t) =>
      Promise.resolve({
        trajectoryId: t.leaseId,
        taskId: t.taskId,
        leaseId: t.leaseId,
        end: End.EPISODE_END_SANDBOX_FAILURE,
        endDetail: "no kernel could be started",
      });
    const { w } = worker(failing, { episodes: 1, backoffMs: 300, backoffMaxMs: 300 });
    w.start();
    await until(() => w.unhealthy !== null && /failed to get a kernel/.test(w.unhealthy), 5000, "unhealthy");
    const submitted = hub.submitted.size;
    await new Promise((r) => setTimeout(r, 200));
    // Backing off (>= 150 ms per lease now), not burning the queue.
    expect(hub.submitted.size - submitted).to.be.at.most(2);
    await w.drain(500);
  });

  it("runs real episodes (scripted engine, sandboxed kernels) end to end", async () => {
    const engine = await startScriptedEngine((_p, n) =>
      n === 0 ? turn("compute", "x = 6 * 7\nprint(x)") : turn("answer", "submit_final_answer(x)"),
    );
    const { pool } = testPool(2);
    await pool.fill();
    const { metrics, registry } = testMetrics();
    const engineClient = new EngineClient({
      baseUrl: engine.url,
      timeoutMs: 5000,
      attempts: 2,
      backoffMs: 10,
      maxConcurrent: 8,
    });
    const w = new Worker(
      { ...OPTS, episodes: 2 },
      {
        hub: client,
        metrics,
        logger: silentLogger(),
        run: (t, ctl) =>
          runEpisode(
            t,
            {
              kernels: pool,
              engine: engineClient,
              tools: new NoTools(),
              metrics,
              logger: silentLogger(),
              workerId: "w",
              observationChars: 2000,
              maxEpisodeSeconds: 60,
            },
            ctl,
          ),
      },
    );
    try {
      hub.add(Array.from({ length: 4 }, (_, i) => task(`real${i}`, `question ${i}`)));
      w.start();
      await until(() => hub.submitted.size === 4, 30_000, "4 real episodes");
      await w.drain(1000);
      for (const tr of hub.submitted.values()) {
        expect(tr.end).to.equal(End.EPISODE_END_ANSWERED);
        expect(tr.finalAnswer).to.equal("42");
        expect(tr.turns).to.have.length(2);
      }
      const text = await registry.metrics();
      expect(text).to.match(/l0_cell_seconds_count\{outcome="ok"\} 8/);
      expect(text).to.match(/l0_llm_tokens_total\{kind="completion"\} \d+/);
    } finally {
      await pool.close();
      await engine.close();
    }
  });
});
