// Operator benchmark: the real `l0 operator` process against the in-process API server (with its
// kubelet/controller simulation). Creates N TrainingRuns (each with an inline worker pool) and
// reports the time until all converge, the API requests per reconcile in idle resyncs (writes must
// be zero) and the operator's peak RSS. Ceiling, in the same run: a client that writes the same
// child objects directly, as fast as the API server takes them.
//   npm run bench -- operator [runs=200]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { type KubeServer, startKubeServer } from "../kube/server.js";
import { emit, round } from "./stats.js";
import { parseTrainingRun } from "../../lib/run-config.js";
import {
  buildConfigMap,
  buildHubService,
  buildTokenSecret,
  buildTrainerJob,
  buildTrainerService,
} from "../../operator/trainingrun/build.js";
import { buildOwnedPool } from "../../operator/trainingrun/build-inference.js";

const N = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 200);
// test/kube's workload simulation (ReplicaSets, pods, kubelet) re-lists every pod per workload on
// every pass, so its cost grows with the square of the objects: at 200 runs the server, not the
// operator, dominates. By default the bench serves the API alone (no pods); `--sim` turns it on.
const SIM = process.argv.includes("--sim");
const RESYNC_S = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const runBody = (name: string) => ({
  apiVersion: "l0.dev/v1alpha1",
  kind: "TrainingRun",
  metadata: { name, namespace: "default" },
  spec: {
    model: { name: "tiny" },
    dataset: { path: "/d.jsonl" },
    trainer: { gpusPerNode: 0 },
    workers: { replicas: 1 },
  },
});

async function pool<T>(items: T[], width: number, fn: (x: T) => Promise<unknown>) {
  let i = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

function converged(kube: KubeServer, name: string): boolean {
  const ready = SIM ? 1 : 0; // without the simulation no pod ever runs
  const r = kube.get("l0.dev/v1alpha1", "TrainingRun", "default", name);
  const p = kube.get("l0.dev/v1alpha1", "AgentWorkerPool", "default", name);
  return (
    !!r &&
    r.status?.observedGeneration === r.metadata.generation &&
    r.status?.phase === "Initializing" &&
    r.status?.workers === ready &&
    !!p &&
    p.status?.readyReplicas === ready &&
    p.status?.desiredReplicas === 1 &&
    p.status?.observedGeneration === p.metadata.generation &&
    !!kube.get("apps/v1", "Deployment", "default", `${name}-workers`)
  );
}

async function metric(url: string, name: string): Promise<Record<string, number>> {
  const text = await (await fetch(url + "/metrics")).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n"))
    if (line.startsWith(name)) {
      const [k, v] = line.split(/ (?=[^ ]+$)/);
      out[k!] = Number(v);
    }
  return out;
}
const sum = (m: Record<string, number>, f: (k: string) => boolean) =>
  Object.entries(m)
    .filter(([k]) => f(k))
    .reduce((a, [, v]) => a + v, 0);

async function operatorRun() {
  const kube = await startKubeServer({
    crdDir: "crds",
    historyWindow: 20_000,
    bookmarkIntervalMs: 60_000,
    sim: SIM ? {} : false,
  });
  const dir = mkdtempSync(join(tmpdir(), "l0-bench-"));
  writeFileSync(join(dir, "kubeconfig"), kube.kubeConfigYaml("default"));
  const child = spawn(
    process.execPath,
    [
      "bin/l0.js",
      "operator",
      "--kubeconfig",
      join(dir, "kubeconfig"),
      "--leader-elect",
      "false",
      "--metrics-port",
      "0",
      "--resync",
      `${RESYNC_S}s`,
      "--log-level",
      "info",
      "--log-format",
      "json",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let metricsUrl = "";
  let errors = 0;
  child.stderr.setEncoding("utf8");
  let buf = "";
  child.stderr.on("data", (d: string) => {
    buf += d;
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const j = JSON.parse(line);
        if (j.message === "running") metricsUrl = j.metrics;
        if (j.level === "error") errors++;
      } catch {
        /* not JSON */
      }
    }
  });
  let peakRss = 0;
  const rssTimer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
      if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024);
    } catch {
      /* exited */
    }
  }, 200);
  try {
    while (!metricsUrl) await sleep(50);
    const custom = kube.kubeConfig("default").makeApiClient(k8s.CustomObjectsApi);
    const names = Array.from({ length: N }, (_, i) => `run-${i}`);
    const t0 = performance.now();
    await pool(names, 16, (n) =>
      custom.createNamespacedCustomObject({
        group: "l0.dev",
        version: "v1alpha1",
        namespace: "default",
        plural: "trainingruns",
        body: runBody(n),
      }),
    );
    const created = performance.now() - t0;
    while (!names.every((n) => converged(kube, n))) {
      if (performance.now() - t0 > (SIM ? 300_000 : 60_000)) {
        const left = names.filter((n) => !converged(kube, n));
        const r = kube.get("l0.dev/v1alpha1", "TrainingRun", "default", left[0]!);
        const p = kube.get("l0.dev/v1alpha1", "AgentWorkerPool", "default", left[0]!);
        throw new Error(
          `not converged in time: ${left.length} left; ${left[0]}: ${JSON.stringify({ gen: r?.metadata.generation, pgen: p?.metadata.generation, d: !!kube.get("apps/v1", "Deployment", "default", `${left[0]}-workers`), workers: r?.status?.workers, phase: r?.status?.phase })}`,
        );
      }
      await sleep(100);
    }
    const convergeMs = performance.now() - t0;
    const atConverge = await metric(metricsUrl, "l0_reconcile_total");
    const reqConverge = await metric(metricsUrl, "l0_operator_kube_requests_total");
    const converge = {
      reconciles: sum(atConverge, () => true),
      conflicts: sum(atConverge, (k) => k.includes('result="conflict"')),
      errors: sum(atConverge, (k) => k.includes('result="error"')),
      requests: sum(reqConverge, (k) => !k.includes('method="WATCH"')),
    };
    // Steady state: let in-flight work finish, then watch two resync periods.
    await sleep(2000);
    const r0 = await metric(metricsUrl, "l0_operator_kube_requests_total");
    const c0 = await metric(metricsUrl, "l0_reconcile_total");
    await sleep(2 * RESYNC_S * 1000 + 500);
    const r1 = await metric(metricsUrl, "l0_operator_kube_requests_total");
    const c1 = await metric(metricsUrl, "l0_reconcile_total");
    const d = (a: Record<string, number>, b: Record<string, number>, f: (k: string) => boolean) =>
      sum(b, f) - sum(a, f);
    const writes = d(r0, r1, (k) => /method="(POST|PUT|PATCH|DELETE)"/.test(k));
    const reads = d(r0, r1, (k) => /method="GET"/.test(k));
    const reconciles = d(c0, c1, () => true);
    return {
      kube,
      converge,
      convergeMs,
      created,
      writes,
      reads,
      reconciles,
      peakRss,
      errors,
      stop: async () => {
        clearInterval(rssTimer);
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
        await kube.stop();
      },
    };
  } catch (err) {
    clearInterval(rssTimer);
    child.kill("SIGKILL");
    await kube.stop();
    throw err;
  }
}

/** Ceiling: the same child objects written straight to a fresh server, 16 at a time. */
async function directWrites(): Promise<number> {
  const kube = await startKubeServer({
    crdDir: "crds",
    historyWindow: 20_000,
    bookmarkIntervalMs: 60_000,
    sim: SIM ? {} : false,
  });
  const objects = k8s.KubernetesObjectApi.makeApiClient(kube.kubeConfig("default"));
  const custom = kube.kubeConfig("default").makeApiClient(k8s.CustomObjectsApi);
  const t0 = performance.now();
  await pool(
    Array.from({ length: N }, (_, i) => `run-${i}`),
    16,
    async (n) => {
      const created = (await custom.createNamespacedCustomObject({
        group: "l0.dev",
        version: "v1alpha1",
        namespace: "default",
        plural: "trainingruns",
        body: runBody(n),
      })) as never;
      const run = parseTrainingRun(created);
      const r = { ...run, metadata: (created as { metadata: never }).metadata };
      for (const o of [
        buildTokenSecret(r, "t", {}),
        buildConfigMap(r),
        buildTrainerService(r),
        buildHubService(r),
        buildTrainerJob(r, 0),
        buildOwnedPool(r, 1),
      ])
        await objects.create(o as k8s.KubernetesObject);
    },
  );
  const ms = performance.now() - t0;
  await kube.stop();
  return ms;
}

const op = await operatorRun();
await op.stop();
const direct = await directWrites();
const figures = {
  bench: "operator",
  runs: N,
  sim: SIM,
  converge_s: round(op.convergeMs / 1000, 2),
  create_runs_s: round(op.created / 1000, 2),
  direct_writes_s: round(direct / 1000, 2),
  converge_vs_direct: round(op.convergeMs / direct, 2),
  converge_reconciles: op.converge.reconciles,
  converge_conflicts: op.converge.conflicts,
  converge_errors: op.converge.errors,
  converge_requests: op.converge.requests,
  idle_resync_writes: op.writes,
  idle_resync_reconciles: op.reconciles,
  idle_requests_per_reconcile: op.reconciles ? round((op.reads + op.writes) / op.reconciles, 3) : null,
  operator_peak_rss_mib: round(op.peakRss / 2 ** 20, 1),
  operator_error_logs: op.errors,
};
console.log(
  `${N} runs (each with an inline worker pool): converged in ${figures.converge_s} s (runs created in ${figures.create_runs_s} s)`,
);
console.log(
  `ceiling: the same run + 6 children written directly by one client: ${figures.direct_writes_s} s (operator/direct ${figures.converge_vs_direct}x)`,
);
console.log(
  `idle: ${op.reconciles} reconciles over two ${RESYNC_S}s resyncs, ${op.writes} writes, ${op.reads} reads`,
);
console.log(`operator peak RSS ${figures.operator_peak_rss_mib} MiB; error log lines ${op.errors}`);
emit(figures);
