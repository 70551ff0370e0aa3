// `l0 trainer`: the trainer pod's main. Launches the learner (CPU tiny model with its colocated
// engine, warm-started or resumed), runs the Hub and its Rollout server in-process, and drives
// the training loop with consistent checkpoints of learner + hub state together. With
// spec.inference it also runs the weight service and waits for the engines after every step.
import { readSecretFile } from "../../../lib/secrets.js";
import { appendFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadConfig, redact } from "../../../lib/config.js";
import { L0Error, invalidField } from "../../../lib/errors.js";
import { startServer } from "../../../lib/grpc.js";
import { readTlsDir } from "../../../lib/tls.js";
import { createLogger, errorFields } from "../../../lib/log.js";
import { createRegistry, serveProbes } from "../../../lib/metrics.js";
import { readTrainingRun } from "../../../lib/run-config.js";
import { createShutdown } from "../../../lib/shutdown.js";
import { CHECKPOINT_FILE, readCheckpoint, writeCheckpoint } from "../hub/checkpoint.js";
import { loadRunDatasets } from "../hub/dataset.js";
import { type EvalJudge } from "../hub/evaluation.js";
import { Hub } from "../hub/hub.js";
import { Judge } from "../hub/judge.js";
import { type Batch } from "../hub/samples.js";
import { RolloutServer } from "../hub/service.js";
import { type HubSettings, hubSettings } from "../hub/settings.js";
import { LearnerClient, launchLearner, logTo } from "../learner/client.js";
import { followNode, learnerDevice, nodeLayout, rankEnvs, startFollowers } from "./ranks.js";
import { type EmbeddedWeights, startWeightService } from "../weights/embed.js";
import { HISTORY_FILE, beginSave, commitSave, findLatest } from "./checkpoint.js";
import { TRAINER_CONFIG, TRAINER_ENV_PREFIX } from "./config.js";
import { runLoop } from "./loop.js";
import { type HistoryRecord } from "./record.js";
import { TensorBoardLog, tensorboardDir } from "./tensorboard.js";
import { enginesHold, minVersion, writePublished } from "./versions.js";
import { TrainerMetrics } from "./metrics.js";
import { TRAJECTORIES_FILE, sampleTrajectories } from "./trajectories.js";
import { warmStartFlags } from "./warm-start.js";

/** The in-run evaluation's judge (spec.evaluation.judge), its key from the mounted Secret's file. */
function evalJudge(j: HubSettings["judge"], keyFile: string): EvalJudge | null {
  if (!j) return null;
  const flag = "--judge-key-file (L0_TRAINER_JUDGE_KEY_FILE)";
  if (j.keyed && !keyFile)
    throw invalidField(
      flag,
      "is required: spec.evaluation.judge.secretRef names a Secret for the judge's key",
    );
  const apiKey = keyFile ? readSecretFile(keyFile, flag) : "";
  const judge = new Judge({
    baseUrl: j.url,
    model: j.model,
    apiKey,
    attempts: j.attempts,
    timeoutMs: j.timeoutMs,
    backoffMs: 500,
  });
  return { judge, maxConcurrent: j.maxConcurrent };
}

export async function main(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const cfg = loadConfig(TRAINER_CONFIG, { flags, env, envPrefix: TRAINER_ENV_PREFIX });
  const logger = createLogger({ component: "trainer", level: cfg.logLevel, format: cfg.logFormat });
  const token = readSecretFile(cfg.tokenFile, "--token-file (L0_TRAINER_TOKEN_FILE)");
  const tls = readTlsDir(cfg.tlsDir, "--tls-dir (L0_TRAINER_TLS_DIR)");
  const run = readTrainingRun(cfg.runConfig);
  const ranks = rankEnvs(nodeLayout(run.spec.trainer, learnerDevice(run.spec.trainer.gpusPerNode, env), env));
  const rankFlags = { runConfig: cfg.runConfig, tokenFile: cfg.tokenFile };
  if (ranks[0]!.RANK !== undefined && ranks[0]!.RANK !== "0")
    return followNode(ranks, rankFlags, logger.child({ attempt: cfg.attempt }));
  // Separate inference (spec.inference): the learner runs no engine; each policy version is
  // exported and served by the weight service here, and the sidecars beside the engines pull it.
  const separate = run.spec.inference !== undefined;
  if (separate && cfg.enginePort >= 0)
    throw invalidField(
      "--engine-port (L0_TRAINER_ENGINE_PORT)",
      "must be -1 with spec.inference (the inference engines serve, not the learner)",
    );
  if (!separate && cfg.enginePort < 0)
    throw invalidField("--engine-port (L0_TRAINER_ENGINE_PORT)", "is required for the colocated engine");
  const exportDir = resolve(cfg.exportDir || join(tmpdir(), "l0-weights"));
  const settings = hubSettings(run);
  const judge = evalJudge(settings.judge, cfg.judgeKeyFile);
  const log = logger.child({ run: `${settings.run.namespace}/${settings.run.name}`, attempt: cfg.attempt });
  const { train, eval: evalDs } = loadRunDatasets(settings.dataset, cfg.runConfig);

  const ck = run.spec.checkpoint ?? {};
  const root = cfg.checkpointDir;
  if (root) mkdirSync(root, { recursive: true });
  const from = root && ck.resume !== false ? findLatest(root) : null;
  const hubState = from ? readCheckpoint(join(from.dir, CHECKPOINT_FILE)) : null;
  const shutdown = createShutdown({ logger: log, graceMs: 120_000 });
  const registry = createRegistry({ labels: { component: "trainer" } });

  // Separate inference: the weight service starts first, so that after a restart the engines can
  // report the versions they hold, and the learner numbers new versions above all of them.
  let weights: EmbeddedWeights | undefined;
  let firstVersion: number | undefined;
  const replicas = run.spec.inference?.replicas ?? 1;
  if (separate) {
    const w = await startWeightService({
      dir: exportDir,
      token,
      logger: log.child({ component: "weights" }),
      registry,
      host: cfg.host,
      port: cfg.weightsPort,
      bulkPort: cfg.weightsBulkPort,
      tls,
    });
    weights = w;
    shutdown.add("weights", () => w.close());
    const recorded = minVersion(root, exportDir); // read once: above what was published or exported
    // A fresh run's engines hold nothing of it; after a restart or on a resume they may.
    const held =
      cfg.attempt > 0 || from || recorded > 1
        ? await enginesHold(w.engines, replicas, cfg.engineReportWait, shutdown.signal)
        : 0;
    firstVersion = Math.max(recorded, held + 1);
    log.info("weight service listening", {
      weightsPort: w.port,
      weightsBulkPort: w.bulkPort,
      exportDir,
      engines: replicas,
      firstVersion,
      enginesHold: held,
    });
  }

  // Global rank 0 (this pod's first process) leads; this pod's other ranks follow it.
  const followers = startFollowers(ranks.slice(1), rankFlags, log, env);
  shutdown.add("learner-ranks", async () => {
    followers.stopping(); // rank 0 stops the group as it exits
    await Promise.race([followers.exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
    followers.kill();
  });
  const launched = launchLearner({
    env: { ...env, ...ranks[0] },
    flags: {
      runConfig: cfg.runConfig,
      tokenFile: cfg.tokenFile,
      host: "127.0.0.1",
      port: 0,
      engineHost: cfg.engineHost,
      enginePort: cfg.enginePort,
      exportDir: separate ? exportDir : undefined,
      minVersion: firstVersion,
      loadDir: from ? join(from.dir, "learner") : undefined,
      ...warmStartFlags(run.spec.warmStart, cfg.runConfig, from !== null),
    },
    readyTimeoutMs: cfg.learnerReadyTimeout,
    onLog: logTo(log.child({ component: "learner" })),
  });
  const learner = await Promise.race([launched, followers.failed]);
  shutdown.add("learner", async () => void (await learner.stop(30_000)));
  const client = new LearnerClient(learner.address, { token });
  const info = await client.waitReady(60_000);
  const version = Number(info.policyVersion);
  // With separate inference the learner's version is raised past every published one on purpose.
  if (hubState && hubState.policyVersion !== version && version !== firstVersion)
    log.warn("hub checkpoint and learner disagree on the policy version; using the learner's", {
      hub: hubState.policyVersion,
      learner: version,
    });

  const metrics = new TrainerMetrics(registry);
  const hub = new Hub({
    settings,
    train,
    eval: evalDs,
    registry,
    logger: log.child({ component: "hub" }),
    leaseTimeoutMs: cfg.leaseTimeout,
    maxAttempts: cfg.maxAttempts,
    backoffBaseMs: cfg.retryBackoff,
    backoffMaxMs: cfg.retryBackoffMax,
    resume: hubState,
    judge,
  });
  hub.start();
  shutdown.add("hub", () => hub.stop());
  let listening = false;
  const probes = await serveProbes({
    registry,
    host: cfg.host,
    port: cfg.metricsPort,
    readiness: () => (listening ? null : "rollout gRPC server not listening yet"),
  });
  shutdown.add("probes", () => probes.close());
  const server = await startServer((s) => new RolloutServer(hub, { token, logger: log }).addToServer(s), {
    host: cfg.host,
    port: cfg.hubPort,
    tls,
  });
  listening = true;
  shutdown.add("grpc", async () => {
    listening = false;
    await server.stop();
  });

  let lastSaved = from?.step ?? -1;
  let lastTrained = hub.step;
  const save = async (step: number): Promise<void> => {
    if (!root) return;
    try {
      const dir = beginSave(root, step);
      await client.save(join(dir, "learner"));
      writeCheckpoint(join(dir, CHECKPOINT_FILE), hub.snapshot());
      const pruned = commitSave(root, step, ck.keep ?? 3);
      lastSaved = step;
      metrics.checkpoints.inc({ result: "ok" });
      log.info("checkpoint saved", { step, dir, pruned });
    } catch (err) {
      metrics.checkpoints.inc({ result: "error" });
      throw err;
    }
  };
  // A warm start can take hours on a real model: keep it at once, before the first weight sync
  // (which may wait long for inference pods to schedule and can time out), so a crash before the
  // first step's checkpoint resumes after it (step 0) instead of running it again.
  if (root && from === null && run.spec.warmStart) await save(0);
  // Strictly on-policy with separate engines: a version is exported, then every engine must serve
  // it before the next step leases episodes (publish fails with WeightSyncTimeout, never hangs).
  let publish: ((v: number, signal: AbortSignal) => Promise<void>) | undefined;
  if (weights) {
    const w = weights;
    publish = async (v, signal) => {
      const t0 = Date.now();
      writePublished(root, v);
      await client.exportWeights(exportDir);
      await w.publish(v, { timeoutMs: cfg.weightSyncTimeout, minEngines: replicas, signal });
      log.info("engines serve the new policy", {
        policyVersion: v,
        engines: replicas,
        seconds: (Date.now() - t0) / 1000,
      });
    };
    try {
      await publish(version, shutdown.signal);
    } catch (err) {
      if (shutdown.signal.aborted) return; // stopped while waiting for the engines: nothing to save
      throw err;
    }
  }

  const trajectories = (batch: Batch): void => {
    const lines = sampleTrajectories(batch, cfg.trajectoriesPerStep);
    if (root && lines.length > 0)
      appendFileSync(join(root, TRAJECTORIES_FILE), lines.map((l) => JSON.stringify(l) + "\n").join(""));
  };
  const tbDir = tensorboardDir(run, root);
  const tensorboard = tbDir
    ? new TensorBoardLog({ dir: tbDir, logger: log, errors: metrics.tensorboardErrors })
    : null;
  if (tensorboard) shutdown.add("tensorboard", () => tensorboard.close());
  if (run.spec.observability.tensorboard.enabled && !tensorboard)
    log.warn(
      "spec.observability.tensorboard.enabled, but no checkpoint directory to write under: no event files",
    );
  const history = (rec: HistoryRecord): void => {
    if (rec.kind === "step") lastTrained = rec.step;
    if (root) appendFileSync(join(root, HISTORY_FILE), JSON.stringify(rec) + "\n");
    tensorboard?.record(rec);
  };
  log.info("trainer ready", {
    hubPort: server.port,
    metricsPort: probes.port,
    engineUrl: learner.engineUrl,
    policyVersion: version,
    resumedStep: from?.step ?? null,
    config: redact(TRAINER_CONFIG, cfg),
    questions: train.questions.length,
    tensorboard: tensorboard?.path ?? null,
  });

  const loop = runLoop({
    hub,
    learner: client,
    metrics,
    logger: log,
    signal: shutdown.signal,
    version,
    hasEval: evalDs !== undefined,
    checkpoint: root ? save : undefined,
    everySteps: ck.everySteps ?? 10,
    publish,
    history,
    trajectories,
  });
  // Registered last, so it runs first on a signal: let a Train in flight finish, then save what
  // the learner and hub agree on, while both are still up.
  shutdown.add("loop", async () => {
    await loop.catch(() => undefined);
    if (hub.step === lastTrained && hub.step > lastSaved && hub.step > 0) await save(hub.step);
  });
  try {
    await Promise.race([loop, followers.failed]);
  } catch (err) {
    if (shutdown.signal.aborted) return; // the shutdown hooks stop and save
    log.error("training loop failed", errorFields(err));
    await shutdown.run("loop-failed");
    throw err instanceof L0Error ? err : new L0Error("Internal", (err as Error).message);
  }
  if (shutdown.signal.aborted) return;
  if (hub.step > lastSaved) await save(hub.step);
  const code = await shutdown.run("finished");
  log.info("trainer finished", { steps: hub.step, code });
}
