// `l0 hub` as a real process: it reads the TrainingRun and the token file, reports a broken
// dataset line by number and goes on, serves Rollout and /metrics, steps through every batch
// standalone while a worker (a real gRPC client) leases and submits, checkpoints, and exits 0
// on SIGTERM. A bad flag exits 2 naming it.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { call, channelOptions } from "../../lib/grpc.js";
import { l0, RolloutClient } from "../../lib/proto.js";
import { traj } from "./helpers.js";

function setup(): { dir: string; args: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "l0-hub-cli-"));
  const lines = Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `q${i}?`, gold: `a${i}` }));
  lines.splice(2, 0, "{broken");
  writeFileSync(join(dir, "train.jsonl"), lines.join("\n") + "\n");
  writeFileSync(
    join(dir, "run.yaml"),
    [
      "apiVersion: l0.dev/v1alpha1",
      "kind: TrainingRun",
      "metadata: {name: tiny, namespace: default}",
      "spec:",
      "  model: {name: tiny}",
      "  dataset: {path: train.jsonl, questionField: prompt, answerField: gold}",
      "  algorithm: {groupSize: 2, batchSize: 2, maxSteps: 2, dynamicSampling: false}",
      "  workers: {}",
    ].join("\n") + "\n",
  );
  writeFileSync(join(dir, "token"), "cli-token\n");
  return {
    dir,
    args: [
      "bin/l0.js",
      "hub",
      "--run-config",
      join(dir, "run.yaml"),
      "--token-file",
      join(dir, "token"),
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--metrics-port",
      "0",
      "--state-dir",
      join(dir, "state"),
      "--log-format",
      "json",
    ],
  };
}

function waitForLog(
  child: ChildProcess,
  message: string,
  logs: Record<string, unknown>[],
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(
      () => reject(new Error(`no "${message}" log line; got ${JSON.stringify(logs)}`)),
      20_000,
    );
    child.stderr!.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          logs.push(rec);
          if (rec.message === message) {
            clearTimeout(timer);
            resolve(rec);
          }
        } catch {
          logs.push({ raw: line });
        }
      }
    });
    child.once("exit", (code) =>
      reject(new Error(`exited ${code} before "${message}": ${JSON.stringify(logs)}`)),
    );
  });
}

describe("l0 hub process", function () {
  this.timeout(60_000);

  it("serves workers, steps through every batch standalone, checkpoints, and stops cleanly", async () => {
    const { dir, args } = setup();
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    const logs: Record<string, unknown>[] = [];
    try {
      const ready = await waitForLog(child, "hub listening", logs);
      expect(ready).to.deep.include({ questions: 6, skippedLines: 1 });
      expect(logs.some((l) => l.message === "dataset line skipped" && l.line === 3)).to.equal(true);
      const client = new RolloutClient(
        `127.0.0.1:${String(ready.port)}`,
        grpc.credentials.createInsecure(),
        channelOptions(),
      );
      const o = { token: "cli-token", timeoutMs: 10_000 };
      try {
        let stats = await call(client.stats, client, {}, o);
        for (let i = 0; i < 50 && stats.phase !== l0.v1.HubPhase.HUB_PHASE_DONE; i++) {
          const { tasks } = await call(client.lease, client, { workerId: "w", maxTasks: 8, waitMs: 500 }, o);
          for (const [k, t] of tasks.entries())
            await call(
              client.submit,
              client,
              { trajectory: traj(t, { answer: k % 2 ? "x" : `a${/\d+/.exec(t.prompt!)![0]}` }) },
              o,
            );
          stats = await call(client.stats, client, {}, o);
        }
        expect(stats).to.deep.include({
          step: 2,
          maxSteps: 2,
          phase: l0.v1.HubPhase.HUB_PHASE_DONE,
          completed: 8,
        });
      } finally {
        client.close();
      }
      expect((await fetch(`http://127.0.0.1:${String(ready.metricsPort)}/readyz`)).status).to.equal(200);
      const metrics = await (await fetch(`http://127.0.0.1:${String(ready.metricsPort)}/metrics`)).text();
      expect(metrics).to.match(/^l0_episodes_total\{outcome="answered",component="hub"\} 8$/m);
      expect(metrics).to.match(/^l0_dataset_lines_skipped_total\{dataset="train",component="hub"\} 1$/m);
      const cp = JSON.parse(readFileSync(join(dir, "state", "hub-state.json"), "utf8")) as { step: number };
      expect(cp.step).to.equal(2);
      const exited = new Promise<number | null>((r) => child.once("exit", r));
      child.kill("SIGTERM");
      expect(await exited).to.equal(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("exits 2 naming the flag when configuration is bad", () => {
    const { args } = setup();
    const i = args.indexOf("--token-file");
    const r = spawnSync(
      process.execPath,
      [...args.slice(0, i), ...args.slice(i + 2), "--lease-timeout", "soon"],
      {
        encoding: "utf8",
        env: { ...process.env, L0_HUB_TOKEN_FILE: "" },
      },
    );
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain("--lease-timeout (L0_HUB_LEASE_TIMEOUT)");
  });
});
