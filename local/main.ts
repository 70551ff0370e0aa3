// `l0 local -f run.yaml`: a TrainingRun as local processes. Validates the run (errors name the
// field) and checks every input file it names, prepares the run directory (run.json, a 0600
// token, logs), starts
// `l0 trainer` and N `l0 worker` with the env the operator gives their pods (plan.ts), shows a
// live progress line from the hub's Stats, and ends with a summary table and a plot. Ctrl-C
// stops everything and leaves a resumable checkpoint; running the same command again resumes.
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../lib/config.js";
import { readTrainingRun } from "../lib/run-config.js";
import { EXIT } from "../lib/run-main.js";
import { runConfigJson } from "../operator/trainingrun/build.js";
import { HISTORY_FILE } from "../images/trainer/trainer/checkpoint.js";
import { TENSORBOARD_DIR } from "../images/trainer/trainer/tensorboard.js";
import { LOCAL_CONFIG, LOCAL_ENV_PREFIX } from "./config.js";
import {
  type LocalPaths,
  type LocalPorts,
  type ProcessPlan,
  absolutize,
  inferencePlans,
  trainerPlans,
  workerPlan,
} from "./plan.js";
import { plotSvg } from "./plot.js";
import { type Child, killGroup, startChild, startGang, stopChild } from "./procs.js";
import { checkInputs, sandboxMode } from "./preflight.js";
import { exitAction, exitReport, freePorts, logTail } from "./supervise.js";
import { watchProgress } from "./watch.js";
import { formatSummary, parseHistory, summarize } from "./summary.js";

const L0_BIN = resolve(dirname(fileURLToPath(import.meta.url)), "..", "bin", "l0.js");
const MAX_RESTARTS = 5;

const say = (text: string): void => void process.stdout.write(text + "\n");

export async function main(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const cfg = loadConfig(LOCAL_CONFIG, { flags, env, envPrefix: LOCAL_ENV_PREFIX });
  const file = resolve(String(flags.file));
  const run = absolutize(readTrainingRun(file), dirname(file));
  checkInputs(run, cfg.judgeKeyFile);
  // spec.inference: separate engines as the cluster runs them (weight service -> sidecar ->
  // engine), each engine here the learner's CPU engine alone, whatever spec.inference.engine says.
  const replicas = run.spec.inference ? (run.spec.inference.replicas ?? 1) : 0;
  const name = run.metadata?.name ?? "run";
  const runDir = resolve(cfg.runDir || join("runs", name));
  const ckDir = join(runDir, "checkpoints");
  if (cfg.fresh) rmSync(ckDir, { recursive: true, force: true });
  mkdirSync(join(runDir, "logs"), { recursive: true });
  const resuming = existsSync(join(ckDir, "latest"));

  const runConfig = join(runDir, "run.json");
  writeFileSync(runConfig, runConfigJson(run));
  const tokenFile = join(runDir, "token");
  writeFileSync(tokenFile, randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
  chmodSync(tokenFile, 0o600);
  const paths: LocalPaths = {
    runDir,
    runConfig,
    tokenFile,
    checkpointDir: ckDir,
    ...(cfg.judgeKeyFile ? { judgeKeyFile: resolve(cfg.judgeKeyFile) } : {}),
  };
  const gangSize = run.spec.trainer.nodes;
  const picked = await freePorts(3 + (gangSize > 1 ? 1 : 0) + (replicas > 0 ? 1 + replicas : 0));
  const ports: LocalPorts = { hub: picked.shift()!, engine: picked.shift()!, metrics: picked.shift()! };
  if (gangSize > 1) ports.rendezvous = picked.shift()!;
  if (replicas > 0) {
    ports.weights = picked.shift()!;
    ports.engines = picked;
  }
  const nWorkers = cfg.workers || run.spec.workers?.replicas || 1;
  const maxSteps = run.spec.algorithm?.maxSteps ?? 100;
  say(
    `l0 local: ${name}: ${maxSteps} steps, ${nWorkers} worker(s)` +
      (replicas > 0 ? `, ${replicas} inference engine(s) with weight sync` : "") +
      `; run directory ${runDir}` +
      (resuming
        ? " (resuming from its checkpoint)"
        : run.spec.warmStart
          ? `; warm start on ${run.spec.warmStart.path}`
          : "; no warm start (spec.warmStart)"),
  );
  say(`  logs: ${join(runDir, "logs")}/*.log   metrics: http://127.0.0.1:${ports.metrics}/metrics`);

  // Slot 0 is the trainer; workers and the inference tier (which outlives trainer restarts, as
  // its Deployment does) are kept up by `keepUp`, each in its own slot.
  const children: Child[] = [];
  // spec.trainer.nodes > 1: one process per trainer pod, restarted together; the first stands for the gang.
  let gang: Child[] = [];
  const killAll = (): void => [...children, ...gang].forEach(killGroup);
  process.on("exit", killAll);
  const t0 = Date.now();
  gang = startGang(L0_BIN, trainerPlans(run, paths, ports), env);
  let trainer = gang[0]!;
  children.push(trainer);
  // For operators of this machine (and the tests): which processes belong to the run.
  const writePids = (): void =>
    writeFileSync(
      join(runDir, "pids.json"),
      JSON.stringify({
        local: process.pid,
        ...Object.fromEntries([...children, ...gang].map((c) => [c.plan.name, c.process.pid])),
      }) + "\n",
    );
  // Ctrl-C: the trainer saves a checkpoint of the last trained step and exits; a second Ctrl-C kills.
  let stopping = false;
  let over = false; // the run ended: nothing is started again
  let stoppedOn = ""; // a component's configuration stopped the run
  const stopAll = (): void => {
    stopping = true;
    void stopChild(trainer, 120_000);
    for (const c of children.slice(1)) void stopChild(c, 10_000);
  };
  // A worker, engine or sidecar that dies is reported (its last log lines) and started again
  // after a second, as a pod's container is restarted, up to MAX_RESTARTS times each (the sidecar
  // loads the served version into a restarted engine); one that fails on its configuration
  // (exit 2) stops the run instead.
  const keepUp = (plan: ProcessPlan, slot: number, restarts: number): void => {
    const c = startChild(L0_BIN, plan, env);
    children[slot] = c;
    void c.exited.then((code) => {
      if (children[slot] !== c) return;
      const action = exitAction(code, stopping || over, restarts, MAX_RESTARTS);
      if (action === "ignore") return;
      const tail = logTail(plan.logFile);
      if (action === "stop-run") {
        say(exitReport(plan.name, code, tail, plan.logFile, "stopping the run"));
        stoppedOn ||= plan.name;
        stopAll();
        return;
      }
      if (action === "give-up") {
        say(exitReport(plan.name, code, tail, plan.logFile, `not started again (${MAX_RESTARTS} restarts)`));
        return;
      }
      say(
        exitReport(
          plan.name,
          code,
          tail,
          plan.logFile,
          `starting it again (${restarts + 1} of ${MAX_RESTARTS})`,
        ),
      );
      setTimeout(() => {
        if (stopping || over || children[slot] !== c) return;
        killGroup(c);
        keepUp(plan, slot, restarts + 1);
        writePids();
      }, 1000);
    });
  };
  const sandbox = sandboxMode(cfg.sandboxMode);
  if (sandbox.note) say(`  sandbox: ${sandbox.note}`);
  for (let i = 0; i < nWorkers; i++) keepUp(workerPlan(run, paths, ports, i, sandbox.mode), 1 + i, 0);
  for (let i = 0; i < replicas; i++) {
    const p = inferencePlans(run, paths, ports, i);
    keepUp(p.engine, 1 + nWorkers + 2 * i, 0);
    keepUp(p.sidecar, 2 + nWorkers + 2 * i, 0);
  }
  writePids();

  const onSignal = (sig: string): void => {
    if (stopping) {
      killAll();
      process.exit(EXIT.interrupted);
    }
    process.stdout.write(
      `\nl0 local: ${sig}: stopping (the trainer writes a checkpoint; Ctrl-C again to kill)\n`,
    );
    stopAll();
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));

  const progress = watchProgress({
    hub: `127.0.0.1:${ports.hub}`,
    metricsUrl: `http://127.0.0.1:${ports.metrics}/metrics`,
    token: readFileSync(tokenFile, "utf8").trim(),
    maxSteps,
    mode: cfg.progress,
    trainerLog: () => trainer.plan.logFile,
    t0,
    say,
  });

  // A crashed trainer (hub and learner with it) is restarted from the run's last checkpoint, up
  // to spec.trainer.maxRestarts times, as the operator restarts its Job; the workers keep running
  // and reconnect, and their episodes of the lost step are leased again. A trainer that fails on
  // its configuration or input (exit 2) is not restarted: it would fail the same way.
  const maxRestarts = run.spec.trainer?.maxRestarts ?? 3;
  let code = await trainer.exited;
  for (let attempt = 1; code !== 0 && !stopping; attempt++) {
    const action = exitAction(code, false, attempt - 1, maxRestarts);
    const log = trainer.plan.logFile;
    if (action !== "restart") {
      if (action === "stop-run") stoppedOn ||= "trainer";
      say(exitReport("the trainer", code, logTail(log), log, "the run stops"));
      break;
    }
    say(
      exitReport(
        "the trainer",
        code,
        logTail(log),
        log,
        `restarting it from the last checkpoint (restart ${attempt} of ${maxRestarts}, spec.trainer.maxRestarts)`,
      ),
    );
    gang.forEach(killGroup); // their learners too, so the new ones can bind the same ports
    gang = startGang(L0_BIN, trainerPlans(run, paths, ports, attempt), env);
    trainer = gang[0]!;
    children[0] = trainer;
    writePids();
    code = await trainer.exited;
  }
  const outcomes = progress.stop();
  over = true;
  await Promise.all(children.slice(1).map((w) => stopChild(w, 10_000)));
  const seconds = (Date.now() - t0) / 1000;
  const history = existsSync(join(ckDir, HISTORY_FILE))
    ? parseHistory(readFileSync(join(ckDir, HISTORY_FILE), "utf8"))
    : [];
  const summary = summarize(history, outcomes, seconds);
  writeFileSync(join(runDir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
  writeFileSync(
    join(runDir, "plot.svg"),
    await plotSvg(history, `${name}: reward and held-out accuracy per step`),
  );
  if (stoppedOn || (code !== 0 && !stopping)) {
    say(
      `l0 local: failed: ${stoppedOn ? `${stoppedOn} stopped on its configuration` : `the trainer exited with code ${code}`}`,
    );
    say(formatSummary(summary, cfg.output));
    process.exitCode = stoppedOn ? EXIT.config : EXIT.failure;
    return;
  }
  say(stopping ? "l0 local: stopped; run the same command again to resume." : "l0 local: done.");
  say(formatSummary(summary, cfg.output));
  say(`  plot: ${join(runDir, "plot.svg")}   summary: ${join(runDir, "summary.json")}`);
  if (existsSync(join(ckDir, TENSORBOARD_DIR)))
    say(`  curves: tensorboard --logdir ${join(ckDir, TENSORBOARD_DIR)}`);
}
