// End to end: a real Prometheus scrapes a real `l0 hub` and a real `l0 worker` (running NB-Agent
// episodes in bwrap kernels against the worker tests' scripted engine, plus a gRPC client that
// submits engine failures like a second, broken worker), a real `l0 operator` reconciling a
// TrainingRun in the in-process Kubernetes API server (test/kube), and a real `l0 weights` service
// with a real `l0 sidecar` loading a synthetic exported version into the weights tests' engine
// stand-in; it evaluates l0.rules.yaml, and the dashboard's queries return data.
import * as grpc from "@grpc/grpc-js";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { call, channelOptions } from "../../lib/grpc.js";
import { l0, RolloutClient } from "../../lib/proto.js";
import { detectCgroups } from "../../images/worker/sandbox/cgroup.js";
import { engineSeriesIn, seriesIndex } from "../../monitoring/catalog.js";
import { type KubeServer, startKubeServer } from "../kube/server.js";
import { engineStandIn, writeVersion } from "../weights/fixtures.js";
import { allQueries, expandVariables } from "../../monitoring/dashboard.js";
import { type ScriptedEngine, startScriptedEngine, turn } from "../worker/fixtures/engine.js";
import { type Child, type Prometheus, eventually, spawnUntil, startPrometheus } from "./prometheus.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const TOKEN = "e2e-run-token";
const RUN = { namespace: "ml", run: "demo" };
/**
 * Metrics no running program exposes yet, so their queries may return nothing: the loop's figures
 * and hub counters whose labels appear only after an event this short run may not cause.
 */
const MAY_BE_ABSENT = new Set([
  "l0_eval_accuracy",
  "l0_learner_loss",
  "l0_learner_kl",
  "l0_learner_grad_norm",
  "l0_learner_entropy",
  "l0_groups_dropped_total",
  "l0_workqueue_retries_total",
  // The operator does not wire the autoscaler yet (fixed replicas), nor the pool gauges this
  // chart asks for (docs/metrics.md).
  "l0_autoscaler_desired_replicas",
  "l0_autoscaler_backlog",
  "l0_autoscaler_decisions_total",
  "l0_pool_max_replicas",
  "l0_pool_ready_replicas",
]);

/** A broken worker: leases one task a second and reports an engine failure for it, `max` times. */
function driveHub(
  port: number,
  signal: AbortSignal,
  progress: { submitted: number; leased: number },
  max: number,
): Promise<number> {
  const client = new RolloutClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), channelOptions());
  const o = { token: TOKEN, timeoutMs: 5000 };
  let submitted = 0;
  const loop = async (): Promise<number> => {
    while (!signal.aborted && submitted < max) {
      const { tasks } = await call(
        client.lease,
        client,
        { workerId: "e2e-broken", maxTasks: 1, waitMs: 0 },
        o,
      );
      progress.leased += tasks.length;
      for (const t of tasks) {
        // An engine failure: one turn whose completion never came back, no answer.
        await call(
          client.submit,
          client,
          {
            trajectory: {
              trajectoryId: `t-${t.leaseId}`,
              taskId: t.taskId,
              leaseId: t.leaseId,
              workerId: "e2e-broken",
              policyVersion: Number(t.policyVersion ?? 0),
              turns: [],
              hasFinalAnswer: false,
              finalAnswer: "",
              end: l0.v1.EpisodeEnd.EPISODE_END_ENGINE_FAILURE,
              endDetail: "engine unreachable",
              durationSeconds: 0.5,
            },
          },
          o,
        );
        submitted++;
        progress.submitted++;
      }
      await new Promise((r) => setTimeout(r, 1000));
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
  let engine: ScriptedEngine | undefined;
  let kube: KubeServer | undefined;
  let reloads: Awaited<ReturnType<typeof engineStandIn>> | undefined;
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("L0_")));
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
          workers: {},
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
    // The model computes in the kernel, looks something up with the search tool, then answers.
    engine = await startScriptedEngine((_prompt, n) =>
      n === 0
        ? turn("compute and look it up", "x = 6 * 7\nprint(x)\nprint(search('capital'))")
        : turn("answer", "submit_final_answer(x)"),
    );
    const engineUrl = engine.url;
    const worker = hub.then(({ value }) =>
      spawnUntil(
        process.execPath,
        [
          "bin/l0.js",
          "worker",
          ...[
            "--hub",
            `127.0.0.1:${value.grpc}`,
            "--token-file",
            join(dir, "token"),
            "--engine-url",
            engineUrl,
          ],
          ...["--episodes", "2", "--metrics-port", "0", "--host", "127.0.0.1", "--lease-wait", "200ms"],
          ...["--sandbox-mode", detectCgroups().pidsParent ? "strict" : "weak", "--log-format", "json"],
          ...[
            "--memory-mib",
            "256",
            "--max-processes",
            "16",
            "--disk-mib",
            "16",
            "--worker-id",
            "e2e-worker",
          ],
          ...["--search-backend", "local", "--search-corpus", join(ROOT, "examples/tiny-qa/corpus.jsonl")],
        ],
        (line) =>
          line.includes('"worker started"')
            ? (JSON.parse(line) as { metricsPort: number }).metricsPort
            : undefined,
        {
          ...ready,
          env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("L0_"))),
        },
      ),
    );
    // The operator against the in-process API server, campaigning for its Lease in l0-system.
    kube = await startKubeServer({ crdDir: join(ROOT, "crds"), namespaces: ["ml", "l0-system"] });
    writeFileSync(join(dir, "kubeconfig"), kube.kubeConfigYaml("ml"));
    const operator = spawnUntil(
      process.execPath,
      [
        "bin/l0.js",
        "operator",
        ...["--kubeconfig", join(dir, "kubeconfig"), "--metrics-port", "0", "--lease-namespace", "l0-system"],
        ...["--log-format", "json", "--retry-period", "500ms"],
      ],
      (line) => {
        if (!line.includes('"message":"running"')) return undefined;
        return Number(new URL((JSON.parse(line) as { metrics: string }).metrics).port);
      },
      {
        ...ready,
        env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("L0_"))),
      },
    );
    // Weights: the service publishes synthetic version 1; the sidecar pulls, verifies and has the
    // engine stand-in load it.
    await writeVersion(join(dir, "export"), 1);
    reloads = await engineStandIn();
    const reloadUrl = reloads.url;
    const weights = spawnUntil(
      process.execPath,
      [
        "bin/l0.js",
        "weights",
        ...["--dir", join(dir, "export"), "--token-file", join(dir, "token"), "--host", "127.0.0.1"],
        ...["--port", "0", "--metrics-port", "0", "--log-format", "json"],
      ],
      (line) => {
        if (!line.includes('"weights listening"')) return undefined;
        const l = JSON.parse(line) as { port: number; metricsPort: number };
        return { grpc: l.port, metrics: l.metricsPort };
      },
      { ...ready, env: cleanEnv },
    );
    const sidecar = weights.then(({ value }) =>
      spawnUntil(
        process.execPath,
        [
          "bin/l0.js",
          "sidecar",
          ...["--weights-address", `127.0.0.1:${value.grpc}`, "--token-file", join(dir, "token")],
          ...["--root", join(dir, "shared"), "--engine", "sglang", "--engine-url", reloadUrl],
          ...["--engine-id", "engine-0", "--host", "127.0.0.1", "--peer-port", "0", "--metrics-port", "0"],
          ...["--peer-bulk-port", "0"],
          ...["--report-interval", "500ms", "--log-format", "json"],
        ],
        (line) =>
          line.includes('"sidecar started"')
            ? (JSON.parse(line) as { metricsPort: number }).metricsPort
            : undefined,
        { ...ready, env: cleanEnv },
      ),
    );
    const started = await Promise.allSettled([hub, worker, operator, weights, sidecar]);
    for (const s of started) if (s.status === "fulfilled") children.push(s.value.child);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const [h, w, op, wt, inf] = started.map(
      (s) => (s as PromiseFulfilledResult<{ value: unknown }>).value.value,
    ) as [{ grpc: number; metrics: number }, number, number, { grpc: number; metrics: number }, number];
    driving = driveHub(h.grpc, stopDriving.signal, progress, 3).catch((err: unknown) => {
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
        // The trainer pod runs the hub and the weight service.
        { job: "l0-trainer", ports: [h.metrics, wt.metrics], labels: RUN },
        { job: "l0-worker", ports: [w], labels: RUN },
        { job: "l0-inference", ports: [inf], labels: RUN },
        // As the chart's ServiceMonitor: the operator's own `namespace` labels (the pools') win.
        { job: "l0-operator", ports: [op], labels: { namespace: "l0-system" }, honorLabels: true },
      ],
      [join(dir, "rules.yaml")],
    );
    children.push(prom.child);
    // Something for the operator to reconcile: a run with an inline worker pool.
    const runs = kube.kubeConfig("ml").makeApiClient(CustomObjectsApi);
    await runs.createNamespacedCustomObject({
      group: "l0.dev",
      version: "v1alpha1",
      namespace: "ml",
      plural: "trainingruns",
      body: {
        apiVersion: "l0.dev/v1alpha1",
        kind: "TrainingRun",
        metadata: { name: RUN.run, namespace: RUN.namespace },
        spec: {
          model: { name: "tiny" },
          dataset: { path: "/data/tiny-qa/train.jsonl" },
          trainer: { gpusPerNode: 0 },
          workers: { replicas: 1, episodesPerWorker: 2 },
        },
      },
    });
  });

  after(async () => {
    stopDriving.abort();
    await driving?.catch(() => 0);
    for (const c of children.reverse()) await c.stop();
    await engine?.close();
    await kube?.stop();
    await reloads?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("scrapes all five programs in four jobs", async () => {
    await eventually(async () => {
      const { activeTargets } = await prom.get<{
        activeTargets: { labels: { job: string }; health: string }[];
      }>("/api/v1/targets");
      const up = activeTargets.filter((t) => t.health === "up").map((t) => t.labels.job);
      expect(up.sort()).to.deep.equal([
        "l0-inference",
        "l0-operator",
        "l0-trainer",
        "l0-trainer",
        "l0-worker",
      ]);
    }, 20_000);
  });

  it("the real worker's episodes reach the hub and both show them", async () => {
    await eventually(async () => {
      const worker = await prom.query(`sum by (outcome) (l0_episodes_total{job="l0-worker"})`);
      expect(worker.map((e) => e.metric.outcome)).to.include("answered");
      const cells = await prom.query(`sum(l0_cell_seconds_count{job="l0-worker", run="demo"})`);
      expect(Number(cells[0]?.value[1] ?? 0)).to.be.above(0);
      const tools = await prom.query(`sum by (tool) (l0_tool_calls_total{job="l0-worker"})`);
      expect(tools.map((t) => t.metric.tool)).to.include("search");
    }, 45_000);
  });

  it("the real hub's metrics carry the run's labels and move with the traffic", async () => {
    await eventually(async () => {
      const episodes = await prom.query(`sum by (outcome) (l0_episodes_total{job="l0-trainer", run="demo"})`);
      const by = Object.fromEntries(episodes.map((e) => [e.metric.outcome, Number(e.value[1])]));
      expect(driveError, "the gRPC driver failed").to.equal(undefined);
      expect(
        by.answered,
        `${JSON.stringify(by)} ${JSON.stringify(progress)} ${children[1]!.output().slice(-2000)}`,
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
          // No vLLM or SGLang runs here: the engine row is checked in rules.test.ts only.
          const engine = engineSeriesIn(q.expr);
          if (engine.length > 0) {
            skipped.push(`${q.panel}: engine metrics ${engine.join(", ")}`);
            continue;
          }
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

  it("the real sidecar serves the exported version and the weight service shows it exported", async () => {
    await eventually(async () => {
      const v = await prom.query(`max by (job, role) (l0_weights_version{run="demo"})`);
      const by = Object.fromEntries(v.map((r) => [`${r.metric.job}/${r.metric.role}`, Number(r.value[1])]));
      expect(by).to.deep.include({ "l0-trainer/exported": 1, "l0-inference/served": 1 });
    }, 30_000);
    expect(reloads!.calls).to.have.length(1);
  });

  it("every l0_ metric the real programs expose is in the catalog (and docs/metrics.md)", async () => {
    const index = seriesIndex();
    const exposed = await prom.query('group by (__name__, job) ({__name__=~"l0_.+"})');
    expect(exposed.length).to.be.greaterThan(10);
    const unknown = exposed
      .filter((r) => !index.has(r.metric.__name__!))
      .map((r) => `${r.metric.job}: ${r.metric.__name__}`);
    expect(unknown, "metrics missing from monitoring/catalog.ts").to.deep.equal([]);
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

  it("the real operator reconciles the run, leads, and counts its reconciles", async () => {
    await eventually(async () => {
      const leader = await prom.query(`max(l0_operator_leader{job="l0-operator"})`);
      expect(Number(leader[0]?.value[1])).to.equal(1);
      const ok = await prom.query(
        `sum by (controller) (l0_reconcile_total{job="l0-operator", result="success"})`,
      );
      expect(ok.map((r) => r.metric.controller)).to.include.members(["trainingrun"]);
    }, 30_000);
  });

  it("no alert fires for a healthy run with a leading operator", async () => {
    // The operator leads, no pool is at maxReplicas and the hub is up.
    const firing = await prom.query(
      'ALERTS{alertname=~"L0OperatorLeaderMissing|L0HubUnreachable|L0WorkersSaturated"}',
    );
    expect(firing.map((a) => a.metric.alertname)).to.deep.equal([]);
  });
});
