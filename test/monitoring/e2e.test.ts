// End to end: a real Prometheus scrapes a real `l0 hub` (driven by a gRPC client that leases and
// submits trajectories like a worker) and stand-in programs for the worker, the operator and the
// weight sidecar (test/monitoring/fixtures/exporter.ts, serving the catalog's metrics through
// lib/metrics.ts), evaluates l0.rules.yaml, and the dashboard's queries return data.
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { call, channelOptions } from "../../lib/grpc.js";
import { l0, RolloutClient } from "../../lib/proto.js";
import { seriesIndex } from "../../monitoring/catalog.js";
import { allQueries, expandVariables } from "../../monitoring/dashboard.js";
import { type Child, type Prometheus, eventually, spawnUntil, startPrometheus } from "./prometheus.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const TOKEN = "e2e-run-token";
const RUN = { namespace: "ml", run: "demo" };
/**
 * Metrics no running program exposes yet, so their queries may return nothing: the loop's figures
 * (issue 9) and hub counters whose labels appear only after an event this short run may not cause.
 */
const MAY_BE_ABSENT = new Set([
  "l0_eval_accuracy",
  "l0_learner_loss",
  "l0_learner_kl",
  "l0_learner_grad_norm",
  "l0_learner_entropy",
  "l0_groups_dropped_total",
]);

/** Acts as one worker: leases tasks and submits trajectories, one in four an engine failure. */
function driveHub(
  port: number,
  signal: AbortSignal,
  progress: { submitted: number; leased: number },
): Promise<number> {
  const client = new RolloutClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), channelOptions());
  const o = { token: TOKEN, timeoutMs: 5000 };
  let submitted = 0;
  const loop = async (): Promise<number> => {
    while (!signal.aborted) {
      const { tasks } = await call(client.lease, client, { workerId: "e2e", maxTasks: 4, waitMs: 0 }, o);
      progress.leased += tasks.length;
      for (const [i, t] of tasks.entries()) {
        const failed = i === 3;
        await call(
          client.submit,
          client,
          {
            trajectory: {
              trajectoryId: `t-${t.leaseId}`,
              taskId: t.taskId,
              leaseId: t.leaseId,
              workerId: "e2e",
              policyVersion: Number(t.policyVersion ?? 0),
              turns: [
                {
                  promptTokenIds: [1, 2, 3],
                  responseTokenIds: [10, 11],
                  responseLogprobs: [-0.5, -0.25],
                  formatOk: true,
                  outcome: l0.v1.ExecOutcome.EXEC_OUTCOME_OK,
                  llmSeconds: 0.2,
                },
              ],
              hasFinalAnswer: !failed,
              finalAnswer: failed ? "" : "42",
              end: failed
                ? l0.v1.EpisodeEnd.EPISODE_END_ENGINE_FAILURE
                : l0.v1.EpisodeEnd.EPISODE_END_ANSWERED,
              durationSeconds: 0.5 + i,
            },
          },
          o,
        );
        submitted++;
        progress.submitted++;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    return submitted;
  };
  return loop().finally(() => client.close());
}

describe("monitoring end to end: Prometheus scrapes the programs and the dashboard has data", function () {
  this.timeout(90_000);
  let dir: string;
  const children: Child[] = [];
  let prom: Prometheus;
  const stopDriving = new AbortController();
  let driving: Promise<number>;
  let driveError: unknown;
  const progress = { submitted: 0, leased: 0 };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "l0-e2e-monitoring-"));
    writeFileSync(join(dir, "token"), TOKEN + "\n");
    writeFileSync(
      join(dir, "run.yaml"),
      stringify({
        apiVersion: "l0.dev/v1alpha1",
        kind: "TrainingRun",
        metadata: { name: RUN.run, namespace: RUN.namespace },
        spec: {
          model: { name: "tiny" },
          dataset: { path: join(ROOT, "examples/tiny-qa/train.jsonl") },
          algorithm: { groupSize: 4, batchSize: 4, maxSteps: 20 },
        },
      }),
    );
    const ready = { cwd: ROOT, timeoutMs: 30_000 };
    const hub = spawnUntil(
      process.execPath,
      [
        "bin/l0.js",
        "hub",
        ...["--run-config", join(dir, "run.yaml"), "--token-file", join(dir, "token")],
        ...[
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--metrics-port",
          "0",
          "--drive",
          "standalone",
          "--log-format",
          "json",
        ],
      ],
      (line) => {
        if (!line.includes('"hub listening"')) return undefined;
        const l = JSON.parse(line) as { port: number; metricsPort: number };
        return { grpc: l.port, metrics: l.metricsPort };
      },
      ready,
    );
    const stand = (job: string) =>
      spawnUntil(
        process.execPath,
        ["--import", "tsx", "test/monitoring/fixtures/exporter.ts", "--job", job],
        (line) =>
          line.startsWith("{") ? (JSON.parse(line) as { metricsPort: number }).metricsPort : undefined,
        ready,
      );
    const started = await Promise.allSettled([
      hub,
      stand("l0-worker"),
      stand("l0-operator"),
      stand("l0-inference"),
    ]);
    for (const s of started) if (s.status === "fulfilled") children.push(s.value.child);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const [h, w, op, inf] = started.map(
      (s) => (s as PromiseFulfilledResult<{ value: unknown }>).value.value,
    ) as [{ grpc: number; metrics: number }, number, number, number];
    driving = driveHub(h.grpc, stopDriving.signal, progress).catch((err: unknown) => {
      driveError = err;
      return 0;
    });

    // The rule file as shipped, with the recording group's 30 s interval cut to the global 1 s.
    const rules = parse(readFileSync(join(ROOT, "monitoring/rules/l0.rules.yaml"), "utf8")) as {
      groups: { interval?: string }[];
    };
    for (const g of rules.groups) delete g.interval;
    writeFileSync(join(dir, "rules.yaml"), stringify(rules));
    prom = await startPrometheus(
      dir,
      [
        { job: "l0-trainer", port: h.metrics, labels: RUN },
        { job: "l0-worker", port: w, labels: RUN },
        { job: "l0-inference", port: inf, labels: RUN },
        // As the chart's ServiceMonitor: the operator's own `namespace` labels (the pools') win.
        { job: "l0-operator", port: op, labels: { namespace: "l0-system" }, honorLabels: true },
      ],
      [join(dir, "rules.yaml")],
    );
    children.push(prom.child);
  });

  after(async () => {
    stopDriving.abort();
    await driving?.catch(() => 0);
    for (const c of children.reverse()) await c.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("scrapes all four jobs", async () => {
    await eventually(async () => {
      const { activeTargets } = await prom.get<{
        activeTargets: { labels: { job: string }; health: string }[];
      }>("/api/v1/targets");
      const up = activeTargets.filter((t) => t.health === "up").map((t) => t.labels.job);
      expect(up.sort()).to.deep.equal(["l0-inference", "l0-operator", "l0-trainer", "l0-worker"]);
    }, 20_000);
  });

  it("the real hub's metrics carry the run's labels and move with the traffic", async () => {
    await eventually(async () => {
      const episodes = await prom.query(`sum by (outcome) (l0_episodes_total{job="l0-trainer", run="demo"})`);
      const by = Object.fromEntries(episodes.map((e) => [e.metric.outcome, Number(e.value[1])]));
      expect(driveError, "the gRPC driver failed").to.equal(undefined);
      expect(
        by.answered,
        `${JSON.stringify(by)} ${JSON.stringify(progress)} ${children[0]!.output().slice(-1500)}`,
      ).to.be.above(0);
      expect(by.engine_failure, JSON.stringify(by)).to.be.above(0);
      expect(
        await prom.query(`l0_rollout_backlog{job="l0-trainer", namespace="ml", run="demo"}`),
      ).to.have.length(1);
    }, 30_000);
  });

  it("every dashboard query returns data when a running program exposes its metrics", async () => {
    const index = seriesIndex();
    const queries = allQueries().map((q) => ({
      ...q,
      expr: expandVariables(q.expr, { ...RUN, __rate_interval: "1m" }),
    }));
    let skipped: string[] = [];
    await eventually(
      async () => {
        const present = new Set(
          (await prom.query('group by (__name__) ({__name__=~"l0_.+"})')).map((r) => r.metric.__name__!),
        );
        const empty: string[] = [];
        skipped = [];
        for (const q of queries) {
          const raw = [...q.expr.matchAll(/\b(l0_[a-z0-9_]+)\b/g)]
            .map((m) => m[1]!)
            .filter((s) => index.has(s));
          const missing = raw.filter((s) => !present.has(s));
          if (missing.length > 0) {
            const unexpected = missing.filter((s) => !MAY_BE_ABSENT.has(index.get(s)!.name));
            expect(unexpected, `no program exposes ${unexpected.join(", ")}`).to.deep.equal([]);
            skipped.push(`${q.panel}: ${missing.join(", ")}`);
            continue;
          }
          if ((await prom.query(q.expr)).length === 0) empty.push(`${q.panel}: ${q.expr}`);
        }
        expect(empty, "dashboard queries without data").to.deep.equal([]);
      },
      45_000,
      1000,
    );
    // Said out loud, so the report can say which panels this test could not fill.
    if (skipped.length)
      console.log(`      (queries over metrics nothing exposes yet: ${skipped.join("; ")})`);
  });

  it("every alert and recording rule evaluates without error", async () => {
    await eventually(async () => {
      const { groups } = await prom.get<{
        groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[];
      }>("/api/v1/rules");
      const rules = groups.flatMap((g) => g.rules);
      expect(rules.length).to.be.greaterThan(10);
      const bad = rules
        .filter((r) => r.health !== "ok")
        .map((r) => `${r.name}: ${r.health} ${r.lastError ?? ""}`);
      expect(bad).to.deep.equal([]);
    }, 20_000);
  });

  it("no alert fires for a healthy run with a leading operator", async () => {
    // The stand-in operator leads and its pool is below maxReplicas; the hub is up.
    const firing = await prom.query(
      'ALERTS{alertname=~"L0OperatorLeaderMissing|L0HubUnreachable|L0WorkersSaturated"}',
    );
    expect(firing.map((a) => a.metric.alertname)).to.deep.equal([]);
  });
});
