// The programs the monitoring end-to-end test scrapes, started once for all its cases: a real
// `l0 hub` and `l0 worker` (NB-Agent episodes in bwrap kernels against the worker tests' scripted
// engine, plus a gRPC client submitting engine failures like a second, broken worker), a real
// `l0 operator` against the in-process Kubernetes API server (test/kube), a real `l0 weights`
// service and `l0 sidecar` loading a synthetic version into the weights tests' engine stand-in,
// and a real Prometheus scraping them all with l0.rules.yaml loaded.
import * as grpc from "@grpc/grpc-js";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { call, channelOptions } from "../../lib/grpc.js";
import { l0, RolloutClient } from "../../lib/proto.js";
import { detectCgroups } from "../../images/worker/sandbox/cgroup.js";
import { type KubeServer, startKubeServer } from "../kube/server.js";
import { engineStandIn, writeVersion } from "../weights/fixtures.js";
import { type ScriptedEngine, startScriptedEngine, turn } from "../worker/fixtures/engine.js";
import { type Child, type Prometheus, spawnUntil, startPrometheus } from "./prometheus.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const TOKEN = "e2e-run-token";
/** The scrape labels of the run's pods, as the chart's PodMonitor sets them. */
export const RUN = { namespace: "ml", run: "demo" };

type Ports = { grpc: number; metrics: number };
type Started<T> = Promise<{ child: Child; value: T }>;

/** Reads the gRPC and metrics ports from a program's `message` log line. */
const listening =
  (message: string) =>
  (line: string): Ports | undefined => {
    if (!line.includes(`"${message}"`)) return undefined;
    const l = JSON.parse(line) as { port: number; metricsPort: number };
    return { grpc: l.port, metrics: l.metricsPort };
  };
/** Reads the metrics port from a program's `message` log line. */
const metricsPortOn = (message: string) => (line: string) =>
  line.includes(`"${message}"`) ? (JSON.parse(line) as { metricsPort: number }).metricsPort : undefined;

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

/**
 * The whole stack; `start()` in a `before`, `stop()` in the `after` (it stops whatever did start,
 * also when `start()` failed half way).
 */
export class MonitoringStack {
  prom!: Prometheus;
  /** The engine stand-in the sidecar reloads. */
  reloads: Awaited<ReturnType<typeof engineStandIn>> | undefined;
  /** The real worker, for its output in failure messages. */
  worker: Child | undefined;
  /** What the broken worker did, and its error if it failed. */
  readonly progress = { submitted: 0, leased: 0 };
  driveError: unknown;
  #dir = "";
  #children: Child[] = [];
  #engine: ScriptedEngine | undefined;
  #kube: KubeServer | undefined;
  #stopDriving = new AbortController();
  #driving: Promise<number> | undefined;
  readonly #cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("L0_")));

  async start(): Promise<void> {
    this.#dir = mkdtempSync(join(tmpdir(), "l0-e2e-monitoring-"));
    this.#writeRunFiles();
    const hub = this.#startHub();
    // The model computes in the kernel, looks something up with the search tool, then answers.
    this.#engine = await startScriptedEngine((_prompt, n) =>
      n === 0
        ? turn("compute and look it up", "x = 6 * 7\nprint(x)\nprint(search('capital'))")
        : turn("answer", "submit_final_answer(x)"),
    );
    const engineUrl = this.#engine.url;
    const worker = hub.then(({ value }) => this.#startWorker(value.grpc, engineUrl));
    // The operator against the in-process API server, campaigning for its Lease in l0-system.
    this.#kube = await startKubeServer({ crdDir: join(ROOT, "crds"), namespaces: ["ml", "l0-system"] });
    writeFileSync(join(this.#dir, "kubeconfig"), this.#kube.kubeConfigYaml("ml"));
    const operator = this.#startOperator();
    // Weights: the service publishes synthetic version 1; the sidecar pulls, verifies and has the
    // engine stand-in load it.
    await writeVersion(join(this.#dir, "export"), 1);
    this.reloads = await engineStandIn();
    const reloadUrl = this.reloads.url;
    const weights = this.#startWeights();
    const sidecar = weights.then(({ value }) => this.#startSidecar(value.grpc, reloadUrl));
    const started = await Promise.allSettled([hub, worker, operator, weights, sidecar]);
    for (const s of started) if (s.status === "fulfilled") this.#children.push(s.value.child);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const [h, w, op, wt, inf] = started.map(
      (s) => (s as PromiseFulfilledResult<{ value: unknown }>).value.value,
    ) as [Ports, number, number, Ports, number];
    this.worker = (await worker).child;
    this.#driving = driveHub(h.grpc, this.#stopDriving.signal, this.progress, 3).catch((err: unknown) => {
      this.driveError = err;
      return 0;
    });
    await this.#startPrometheus(h, w, op, wt, inf);
    await this.#createRun();
  }

  async stop(): Promise<void> {
    this.#stopDriving.abort();
    await this.#driving?.catch(() => 0);
    for (const c of this.#children.reverse()) await c.stop();
    await this.#engine?.close();
    await this.#kube?.stop();
    await this.reloads?.close();
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
  }

  /** Starts `l0 <args>` from the repository, ready once `pick` finds its port in a log line. */
  #spawn<T>(args: string[], pick: (line: string) => T | undefined, env?: NodeJS.ProcessEnv): Started<T> {
    return spawnUntil(process.execPath, ["bin/l0.js", ...args], pick, { cwd: ROOT, timeoutMs: 30_000, env });
  }

  #writeRunFiles(): void {
    writeFileSync(join(this.#dir, "token"), TOKEN + "\n");
    writeFileSync(
      join(this.#dir, "run.yaml"),
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
  }

  #startHub(): Started<Ports> {
    const dir = this.#dir;
    return this.#spawn(
      [
        "hub",
        ...["--run-config", join(dir, "run.yaml"), "--token-file", join(dir, "token")],
        ...["--host", "127.0.0.1", "--port", "0", "--metrics-port", "0"],
        ...["--drive", "standalone", "--log-format", "json"],
      ],
      listening("hub listening"),
    );
  }

  #startWorker(hubPort: number, engineUrl: string): Started<number> {
    const dir = this.#dir;
    return this.#spawn(
      [
        "worker",
        ...["--hub", `127.0.0.1:${hubPort}`, "--token-file", join(dir, "token"), "--engine-url", engineUrl],
        ...["--episodes", "2", "--metrics-port", "0", "--host", "127.0.0.1", "--lease-wait", "200ms"],
        ...["--sandbox-mode", detectCgroups().pidsParent ? "strict" : "weak", "--log-format", "json"],
        ...["--memory-mib", "256", "--max-processes", "16", "--disk-mib", "16", "--worker-id", "e2e-worker"],
        ...["--search-backend", "local", "--search-corpus", join(ROOT, "examples/tiny-qa/corpus.jsonl")],
      ],
      metricsPortOn("worker started"),
      this.#cleanEnv,
    );
  }

  #startOperator(): Started<number> {
    return this.#spawn(
      [
        "operator",
        ...["--kubeconfig", join(this.#dir, "kubeconfig"), "--metrics-port", "0"],
        ...["--lease-namespace", "l0-system", "--log-format", "json", "--retry-period", "500ms"],
      ],
      (line) => {
        if (!line.includes('"message":"running"')) return undefined;
        return Number(new URL((JSON.parse(line) as { metrics: string }).metrics).port);
      },
      this.#cleanEnv,
    );
  }

  #startWeights(): Started<Ports> {
    const dir = this.#dir;
    return this.#spawn(
      [
        "weights",
        ...["--dir", join(dir, "export"), "--token-file", join(dir, "token"), "--host", "127.0.0.1"],
        ...["--port", "0", "--metrics-port", "0", "--log-format", "json"],
      ],
      listening("weights listening"),
      this.#cleanEnv,
    );
  }

  #startSidecar(weightsPort: number, reloadUrl: string): Started<number> {
    const dir = this.#dir;
    return this.#spawn(
      [
        "sidecar",
        ...["--weights-address", `127.0.0.1:${weightsPort}`, "--token-file", join(dir, "token")],
        ...["--root", join(dir, "shared"), "--engine", "sglang", "--engine-url", reloadUrl],
        ...["--engine-id", "engine-0", "--host", "127.0.0.1", "--peer-port", "0", "--metrics-port", "0"],
        ...["--peer-bulk-port", "0"],
        ...["--report-interval", "500ms", "--log-format", "json"],
      ],
      metricsPortOn("sidecar started"),
      this.#cleanEnv,
    );
  }

  /** Prometheus with the rule file as shipped, the recording group's 30 s interval cut to the global 1 s. */
  async #startPrometheus(hub: Ports, worker: number, operator: number, weights: Ports, sidecar: number) {
    const rules = parse(readFileSync(join(ROOT, "monitoring/rules/l0.rules.yaml"), "utf8")) as {
      groups: { interval?: string }[];
    };
    for (const g of rules.groups) delete g.interval;
    writeFileSync(join(this.#dir, "rules.yaml"), stringify(rules));
    this.prom = await startPrometheus(
      this.#dir,
      [
        // The trainer pod runs the hub and the weight service.
        { job: "l0-trainer", ports: [hub.metrics, weights.metrics], labels: RUN },
        { job: "l0-worker", ports: [worker], labels: RUN },
        { job: "l0-inference", ports: [sidecar], labels: RUN },
        // As the chart's ServiceMonitor: the operator's own `namespace` labels (the pools') win.
        { job: "l0-operator", ports: [operator], labels: { namespace: "l0-system" }, honorLabels: true },
      ],
      [join(this.#dir, "rules.yaml")],
    );
    this.#children.push(this.prom.child);
  }

  /** Something for the operator to reconcile: a run with an inline worker pool. */
  async #createRun(): Promise<void> {
    const runs = this.#kube!.kubeConfig("ml").makeApiClient(CustomObjectsApi);
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
  }
}
