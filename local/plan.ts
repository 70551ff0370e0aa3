// What `l0 local` starts, derived from the operator's own pod builders: the trainer Job's and the
// worker Deployment's container env, with cluster-only values (mount paths, Service DNS names,
// downward-API fields, multi-node rendezvous) rewritten for one machine. Pure and table-tested,
// so a variable the operator adds without a local meaning fails the tests instead of being lost.
import { isAbsolute, join, resolve } from "node:path";
import { type V1EnvVar } from "@kubernetes/client-node";
import { type ResolvedTrainingRun } from "../gen/crds/index.js";
import { parseWorkerPool } from "../lib/run-config.js";
import { buildInference, buildOwnedPool } from "../operator/trainingrun/build-inference.js";
import { buildTrainerJob } from "../operator/trainingrun/build.js";
import { buildWorkerDeployment } from "../operator/workerpool/build.js";

export interface LocalPaths {
  runDir: string;
  runConfig: string;
  tokenFile: string;
  checkpointDir: string;
  /** The judge's API key (--judge-key-file), standing for spec.evaluation.judge.secretRef. */
  judgeKeyFile?: string;
}

export interface LocalPorts {
  hub: number;
  /** The learner's colocated engine; with spec.inference, the inference engines' ports (engines). */
  engine: number;
  metrics: number;
  /** The trainer's weight service (spec.inference). */
  weights?: number;
  /** One per inference replica (spec.inference); workers spread over them. */
  engines?: number[];
  /** torch.distributed rendezvous of the learner ranks (spec.trainer.nodes > 1). */
  rendezvous?: number;
}

export interface ProcessPlan {
  name: string;
  args: string[];
  env: Record<string, string>;
  logFile: string;
}

/** Pure: the run with its relative file paths made absolute (relative to the manifest's directory). */
export function absolutize(run: ResolvedTrainingRun, manifestDir: string): ResolvedTrainingRun {
  const at = (p: string | undefined): string | undefined =>
    p === undefined || isAbsolute(p) ? p : resolve(manifestDir, p);
  const copy = structuredClone(run);
  copy.spec.dataset.path = at(copy.spec.dataset.path)!;
  if (copy.spec.dataset.evalPath) copy.spec.dataset.evalPath = at(copy.spec.dataset.evalPath);
  if (copy.spec.warmStart) copy.spec.warmStart.path = at(copy.spec.warmStart.path)!;
  const search = copy.spec.workers?.tools?.search;
  if (search?.corpusPath) search.corpusPath = at(search.corpusPath);
  return copy;
}

/**
 * Pure: every input file the run reads, with the field that names it (absolutized paths), so
 * `l0 local` can check them all before starting anything.
 */
export function inputFiles(run: ResolvedTrainingRun): { field: string; path: string }[] {
  const s = run.spec;
  const files = [{ field: "spec.dataset.path", path: s.dataset.path }];
  if (s.dataset.evalPath) files.push({ field: "spec.dataset.evalPath", path: s.dataset.evalPath });
  if (s.warmStart) files.push({ field: "spec.warmStart.path", path: s.warmStart.path });
  const search = s.workers?.tools?.search;
  if (search?.backend === "local" && search.corpusPath)
    files.push({ field: "spec.workers.tools.search.corpusPath", path: search.corpusPath });
  return files;
}

/** Env the operator sets that has no meaning on one machine, with the reason. */
export const DROPPED: Record<string, string> = {
  NPROC_PER_NODE: "one learner process per trainer process here (the CPU model)",
  L0_WORKER_SEARCH_API_KEY: "a Secret reference; local runs use the local corpus",
  L0_WORKER_SEARCH_KEY_FILE: "a mounted Secret; local runs use the local corpus",
  L0_TRAINER_TLS_DIR: "the mounted run Secret; local runs speak plaintext on loopback",
  L0_WORKER_TLS_DIR: "the mounted run Secret; local runs speak plaintext on loopback",
  L0_SIDECAR_TLS_DIR: "the mounted run Secret; local runs speak plaintext on loopback",
};

/**
 * Pure: the operator's container env rewritten by `values` (a local value per name). Every
 * variable must be rewritten, dropped (DROPPED) or kept as a plain value; `extra` adds local-only
 * settings. Throws on a downward-API or Secret variable it does not know, naming it.
 */
export function localEnv(
  env: readonly V1EnvVar[],
  values: Record<string, string>,
  extra: Record<string, string> = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    if (e.name in values) out[e.name] = values[e.name]!;
    else if (e.name in DROPPED) continue;
    else if (e.value !== undefined) out[e.name] = e.value;
    else throw new Error(`l0 local: no local value for ${e.name} (set by the operator from a reference)`);
  }
  return { ...out, ...extra };
}

const containerEnv = (env: V1EnvVar[] | undefined): V1EnvVar[] => env ?? [];

/**
 * Pure: one trainer process per trainer pod of the operator's Job (spec.trainer.nodes), the
 * first leading (hub, loop, learner rank 0), the others running only learner ranks. They are
 * one gang: `l0 local` restarts them together, as the operator does the Job's pods.
 */
export function trainerPlans(
  run: ResolvedTrainingRun,
  paths: LocalPaths,
  ports: LocalPorts,
  attempt = 0,
): ProcessPlan[] {
  return Array.from({ length: run.spec.trainer.nodes }, (_, node) => {
    const p = trainerPlan(run, paths, ports, attempt, node);
    return node === 0
      ? p
      : { ...p, name: `trainer-${node}`, logFile: p.logFile.replace(/\.log$/, `-${node}.log`) };
  });
}

/**
 * Pure: the trainer process of pod `node` (0: the leader), from the operator's trainer Job.
 * `attempt` counts restarts after a crash, as the operator's Job attempts do (the trainer resumes
 * from the run's checkpoint).
 */
export function trainerPlan(
  run: ResolvedTrainingRun,
  paths: LocalPaths,
  ports: LocalPorts,
  attempt = 0,
  node = 0,
): ProcessPlan {
  const job = buildTrainerJob(run, attempt);
  const c = job.spec!.template.spec!.containers[0]!;
  const env = localEnv(
    containerEnv(c.env),
    {
      L0_TRAINER_RUN_CONFIG: paths.runConfig,
      L0_TRAINER_TOKEN_FILE: paths.tokenFile,
      L0_TRAINER_HUB_PORT: String(ports.hub),
      L0_TRAINER_METRICS_PORT: String(ports.metrics),
      L0_TRAINER_CHECKPOINT_DIR: paths.checkpointDir,
      L0_TRAINER_ENGINE_PORT: String(ports.engine),
      L0_TRAINER_WEIGHTS_PORT: String(ports.weights ?? 0),
      // Any free port: Plan tells the sidecars which.
      L0_TRAINER_WEIGHTS_BULK_PORT: "0",
      NODE_RANK: String(node),
      MASTER_ADDR: "127.0.0.1",
      MASTER_PORT: String(ports.rendezvous ?? 0),
      L0_TRAINER_JUDGE_KEY_FILE: paths.judgeKeyFile ?? "",
    },
    {
      // Loopback only: nothing on this machine needs to reach the trainer from outside.
      L0_TRAINER_HOST: "127.0.0.1",
      // The learner runs on this machine's CPU (the tiny model), whatever spec.trainer.gpusPerNode says.
      L0_LEARNER_DEVICE: "cpu",
      L0_TRAINER_ENGINE_HOST: "127.0.0.1",
      L0_TRAINER_LOG_FORMAT: "json",
      ...(run.spec.inference ? { L0_TRAINER_EXPORT_DIR: join(paths.runDir, "weights-export") } : {}),
    },
  );
  return {
    name: "trainer",
    args: c.args ?? ["trainer"],
    env,
    logFile: join(paths.runDir, "logs", "trainer.log"),
  };
}

/** The engine port worker `index` uses: the colocated one, or the inference replicas in turn. */
export function engineOf(ports: LocalPorts, index: number): number {
  return ports.engines?.length ? ports.engines[index % ports.engines.length]! : ports.engine;
}

/** Pure: worker process `index`, from the operator's worker Deployment of the run's inline pool. */
export function workerPlan(
  run: ResolvedTrainingRun,
  paths: LocalPaths,
  ports: LocalPorts,
  index: number,
  sandboxMode: "strict" | "weak",
): ProcessPlan {
  // The operator reads its owned pool back from the API server, defaulted; here the same resolver does it.
  const pool = parseWorkerPool(buildOwnedPool(run, 1), "workers");
  const dep = buildWorkerDeployment(pool, run, 1);
  const c = dep.spec!.template.spec!.containers[0]!;
  const env = localEnv(
    containerEnv(c.env),
    {
      L0_WORKER_HUB: `127.0.0.1:${ports.hub}`,
      L0_WORKER_ENGINE_URL: `http://127.0.0.1:${engineOf(ports, index)}`,
      L0_WORKER_TOKEN_FILE: paths.tokenFile,
      L0_WORKER_RUN_CONFIG: paths.runConfig,
      L0_WORKER_METRICS_PORT: "0",
      // Local only: the sandbox mode fits this machine (strict needs a writable pids cgroup,
      // which a root process here has and a non-root pod does not).
      L0_WORKER_SANDBOX_MODE: sandboxMode,
    },
    {
      // Pods default to their host name (the pod name); local processes share one host name.
      L0_WORKER_ID: `local-${index}`,
      L0_WORKER_HOST: "127.0.0.1",
      L0_WORKER_LOG_FORMAT: "json",
      // Short drain: a local Ctrl-C should not wait the pod's 30 s.
      L0_WORKER_GRACE: "3s",
    },
  );
  return {
    name: `worker-${index}`,
    args: c.args ?? ["worker"],
    env,
    logFile: join(paths.runDir, "logs", `worker-${index}.log`),
  };
}

/**
 * Pure: inference replica `index` (spec.inference) as two processes, from the operator's inference
 * Deployment: its engine container becomes the learner's CPU engine alone (`l0 learner --role
 * inference`: the tiny model, no GPU engine here), and its weight-sync container the same `l0
 * sidecar` with the `local` engine adapter, its volume a directory of the run.
 */
export function inferencePlans(
  run: ResolvedTrainingRun,
  paths: LocalPaths,
  ports: LocalPorts,
  index: number,
): { engine: ProcessPlan; sidecar: ProcessPlan } {
  const engine = engineOf(ports, index);
  const dep = buildInference(run).deployment;
  const containers = dep.spec!.template.spec!.containers;
  const sync = containers.find((c) => c.name === "weight-sync")!;
  const dir = join(paths.runDir, `inference-${index}`);
  const sidecarEnv = localEnv(
    containerEnv(sync.env),
    {
      L0_SIDECAR_WEIGHTS_ADDRESS: `127.0.0.1:${ports.weights ?? 0}`,
      L0_SIDECAR_TOKEN_FILE: paths.tokenFile,
      L0_SIDECAR_ENGINE: "local",
      L0_SIDECAR_ENGINE_URL: `http://127.0.0.1:${engine}`,
      L0_SIDECAR_ROOT: join(dir, "weights"),
      // The cluster's init step fetches the model's files there; locally the export is complete.
      L0_SIDECAR_BASE_MODEL_DIR: "",
      L0_SIDECAR_PEER_PORT: "0",
      L0_SIDECAR_PEER_BULK_PORT: "0",
      L0_SIDECAR_METRICS_PORT: "0",
      POD_IP: "127.0.0.1",
    },
    {
      L0_SIDECAR_ENGINE_ID: `local-inference-${index}`,
      L0_SIDECAR_HOST: "127.0.0.1",
      L0_SIDECAR_LOG_FORMAT: "json",
    },
  );
  return {
    engine: {
      name: `engine-${index}`,
      args: ["learner"],
      env: {
        L0_LEARNER_ROLE: "inference",
        L0_LEARNER_DEVICE: "cpu",
        L0_LEARNER_RUN_CONFIG: paths.runConfig,
        L0_LEARNER_TOKEN_FILE: paths.tokenFile,
        L0_LEARNER_ENGINE_HOST: "127.0.0.1",
        L0_LEARNER_ENGINE_PORT: String(engine),
        // Loads only what its sidecar verified (the engine's HTTP API is on loopback, unauthenticated).
        L0_LEARNER_WEIGHTS_ROOT: join(dir, "weights"),
      },
      logFile: join(paths.runDir, "logs", `engine-${index}.log`),
    },
    sidecar: {
      name: `sidecar-${index}`,
      args: sync.args ?? ["sidecar"],
      env: sidecarEnv,
      logFile: join(paths.runDir, "logs", `sidecar-${index}.log`),
    },
  };
}
