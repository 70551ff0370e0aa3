// Drain against the real rollout hub: a real `l0 worker` process (bwrap kernels, a scripted
// engine) gets SIGTERM mid-episode; episodes that can finish in the grace period are submitted,
// the rest are released back to the hub, the process exits 0, and no task is lost.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { startServer, type StartedServer } from "../../lib/grpc.js";
import { createRegistry } from "../../lib/metrics.js";
import { parseTrainingRun } from "../../lib/run-config.js";
import { parseJsonl } from "../../images/trainer/hub/dataset.js";
import { Hub } from "../../images/trainer/hub/hub.js";
import { RolloutServer } from "../../images/trainer/hub/service.js";
import { hubSettings } from "../../images/trainer/hub/settings.js";
import { detectCgroups } from "../../images/worker/sandbox/cgroup.js";
import { type ScriptedEngine, startScriptedEngine, turn } from "./fixtures/engine.js";

const TOKEN = "drain-test-token";

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("worker drain: SIGTERM against the real hub", function () {
  this.timeout(90_000);
  let dir: string;
  let hub: Hub;
  let server: StartedServer;
  let engine: ScriptedEngine;
  let child: ChildProcess | null = null;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "l0-drain-"));
    writeFileSync(join(dir, "token"), TOKEN + "\n");
    const manifest = {
      metadata: { name: "drain", namespace: "test" },
      spec: {
        model: { name: "tiny" },
        dataset: { path: "mem" },
        algorithm: { groupSize: 2, batchSize: 2, maxSteps: 1, dynamicSampling: false },
        agent: { maxTurns: 20, tools: ["notepad"], cellTimeoutSeconds: 5 },
        workers: {},
      },
    };
    writeFileSync(join(dir, "run.json"), JSON.stringify(manifest));
    const run = parseTrainingRun(manifest);
    const lines = [
      JSON.stringify({ question: "quick: what is 6 * 7?", answer: "42" }),
      JSON.stringify({ question: "slow: count forever", answer: "never" }),
    ];
    const train = parseJsonl(lines.join("\n"), { questionField: "question", answerField: "answer" });
    hub = new Hub({ settings: hubSettings(run), train, registry: createRegistry({ defaultMetrics: false }) });
    hub.start();
    server = await startServer((s) => new RolloutServer(hub, { token: TOKEN }).addToServer(s), {
      host: "127.0.0.1",
      port: 0,
    });
    // Every model turn takes 700 ms: the quick episode answers in its first turn, the slow one never.
    engine = await startScriptedEngine((p) =>
      p.includes("quick:") ? turn("easy", "submit_final_answer(6 * 7)") : turn("more", "print('counting')"),
    );
    engine.setDelay(700);
  });

  after(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    hub.stop();
    await server.stop(100);
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("submits what finishes within the grace period, releases the rest, exits 0, loses nothing", async () => {
    await hub.beginStep(0);
    const mode = detectCgroups().pidsParent ? "strict" : "weak";
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("L0_")));
    child = spawn(
      process.execPath,
      [
        "bin/l0.js",
        "worker",
        ...["--hub", server.address, "--token-file", join(dir, "token"), "--engine-url", engine.url],
        ...["--episodes", "4", "--metrics-port", "0", "--host", "127.0.0.1", "--grace", "3s"],
        ...["--heartbeat", "1s"],
        ...[
          "--lease-wait",
          "200ms",
          "--sandbox-mode",
          mode,
          "--log-format",
          "json",
          "--worker-id",
          "drain-w",
        ],
        ...["--memory-mib", "256", "--max-processes", "16", "--disk-mib", "16"],
        ...["--run-config", join(dir, "run.json")],
      ],
      { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let log = "";
    child.stderr!.on("data", (c: Buffer) => (log += c.toString()));
    const exited = new Promise<number | null>((r) => child!.on("exit", (code) => r(code)));

    // All four episodes (2 quick, 2 slow) are leased and running.
    await until(() => Number(hub.stats().leased) === 4, 30_000, "4 leased episodes").catch((e: Error) => {
      throw new Error(`${e.message}; worker log:\n${log}`);
    });
    await until(() => log.includes('"worker started"'), 5000, "the started log line");
    const started = log.split("\n").find((l) => l.includes('"worker started"'))!;
    const port = (JSON.parse(started) as { metricsPort: number }).metricsPort;
    const episodes = (await (await fetch(`http://127.0.0.1:${port}/episodes`)).json()) as { active: number };
    // 4 unless a quick one already finished on a stalled machine; both slow ones are still running.
    expect(episodes.active).to.be.within(2, 4);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).to.match(/l0_worker_episodes_active\{component="worker"\} [234]/);
    expect(metrics).to.match(/l0_sandbox_start_seconds_count\{component="worker"\} [1-9]/);

    child.kill("SIGTERM");
    const code = await exited;
    expect(code, log).to.equal(0);

    const s = hub.stats();
    expect(Number(s.leased), "nothing left leased").to.equal(0);
    expect(Number(s.completed), "the quick pair was submitted").to.equal(2);
    expect(Number(s.queued), "the slow pair is queued again").to.equal(2);
    expect(Number(s.failed), "a release is not a failure").to.equal(0);
    expect(log).to.match(/"message":"grace period over, releasing unfinished episodes"/);
    expect(log).to.include('"run":"test/drain"');
  });
});
