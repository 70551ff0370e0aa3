// `l0 local -f run.yaml`: a TrainingRun as local processes. Validates the run (errors name the
// field), prepares the run directory (run.json, a 0600 token, warm-start demos, logs), starts
// `l0 trainer` and N `l0 worker` with the env the operator gives their pods (plan.ts), shows a
// live progress line from the hub's Stats, and ends with a summary table and a plot. Ctrl-C
// stops everything and leaves a resumable checkpoint; running the same command again resumes.
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadConfig } from "../lib/config.js";
import { call, channelOptions } from "../lib/grpc.js";
import { type l0, RolloutClient } from "../lib/proto.js";
import { readTrainingRun } from "../lib/run-config.js";
import { runConfigJson } from "../operator/trainingrun/build.js";
import { demosJsonl, readQuestions } from "../examples/tiny-qa/demos.js";
import { HISTORY_FILE } from "../images/trainer/trainer/checkpoint.js";
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
import { episodeOutcomes, progressLine, type ProgressState } from "./progress.js";
import { plotSvg } from "./plot.js";
import { type Child, killGroup, startChild, startGang, stopChild } from "./procs.js";
import { parseHistory, summarize, summaryTable } from "./summary.js";

const L0_BIN = resolve(dirname(fileURLToPath(import.meta.url)), "..", "bin", "l0.js");
const MAX_INFERENCE_RESTARTS = 5;

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

const say = (text: string): void => void process.stdout.write(text + "\n");

export async function main(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const cfg = loadConfig(LOCAL_CONFIG, { flags, env, envPrefix: LOCAL_ENV_PREFIX });
  const file = resolve(String(flags.file));
  const run = absolutize(readTrainingRun(file), dirname(file));
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
  let sftData = "";
  if (cfg.sftDemos > 0 && !resuming) {
    sftData = join(runDir, "demos.jsonl");
    const tools = run.spec.agent?.tools ?? ["search", "notepad"];
    writeFileSync(sftData, demosJsonl(readQuestions(run.spec.dataset.path).reverse(), tools, cfg.sftDemos));
  }
  const paths: LocalPaths = { runDir, runConfig, tokenFile, checkpointDir: ckDir, sftData };
  const ports: LocalPorts = { hub: await freePort(), engine: await freePort(), metrics: await freePort() };
  if (run.spec.trainer.nodes > 1) ports.rendezvous = await freePort();
  if (replicas > 0) {
    ports.weights = await freePort();
    ports.engines = [];
    for (let i = 0; i < replicas; i++) ports.engines.push(await freePort());
  }
  const nWorkers = cfg.workers || run.spec.workers?.replicas || 1;
  const maxSteps = run.spec.algorithm?.maxSteps ?? 100;
  say(
    `l0 local: ${name}: ${maxSteps} steps, ${nWorkers} worker(s)` +
      (replicas > 0 ? `, ${replicas} inference engine(s) with weight sync` : "") +
      `; run directory ${runDir}` +
      (resuming ? " (resuming from its checkpoint)" : ""),
  );
  say(`  logs: ${join(runDir, "logs")}/*.log   metrics: http://127.0.0.1:${ports.metrics}/metrics`);

  const children: Child[] = [];
  // The inference tier outlives trainer restarts, as its Deployment does (filled below).
  const inference: Child[] = [];
  const killAll = (): void => [...children, ...gang, ...inference].forEach(killGroup);
  process.on("exit", killAll);
  const t0 = Date.now();
  const warm = { epochs: cfg.sftEpochs, batchSize: cfg.sftBatchSize, learningRate: cfg.sftLearningRate };
  // spec.trainer.nodes > 1: one process per trainer pod; the first stands for the gang.
  let gang = startGang(L0_BIN, trainerPlans(run, paths, ports, warm), env);
  let trainer = gang[0]!;
  children.push(trainer);
  for (let i = 0; i < nWorkers; i++)
    children.push(startChild(L0_BIN, workerPlan(run, paths, ports, i, cfg.sandboxMode), env));
  const workers = children.slice(1);
  // For operators of this machine (and the tests): which processes belong to the run.
  const writePids = (): void =>
    writeFileSync(
      join(runDir, "pids.json"),
      JSON.stringify({
        local: process.pid,
        ...Object.fromEntries([...children, ...gang, ...inference].map((c) => [c.plan.name, c.process.pid])),
      }) + "\n",
    );
  // Ctrl-C: the trainer saves a checkpoint of the last trained step and exits; a second Ctrl-C kills.
  let stopping = false;
  let over = false; // the run ended: nothing is started again
  // An inference process that dies is started again after a second, as a pod's container is
  // restarted (the sidecar then loads the served version into a restarted engine), up to
  // MAX_INFERENCE_RESTARTS times each.
  const keepUp = (plan: ProcessPlan, slot: number, restarts: number): void => {
    const c = startChild(L0_BIN, plan, env);
    inference[slot] = c;
    void c.exited.then((code) => {
      if (stopping || over || inference[slot] !== c || restarts >= MAX_INFERENCE_RESTARTS) return;
      say(
        `l0 local: ${plan.name} exited with code ${code}; starting it again ` +
          `(${restarts + 1} of ${MAX_INFERENCE_RESTARTS}; see ${plan.logFile})`,
      );
      setTimeout(() => {
        if (stopping || over || inference[slot] !== c) return;
        killGroup(c);
        keepUp(plan, slot, restarts + 1);
        writePids();
      }, 1000);
    });
  };
  for (let i = 0; i < replicas; i++) {
    const p = inferencePlans(run, paths, ports, i);
    keepUp(p.engine, 2 * i, 0);
    keepUp(p.sidecar, 2 * i + 1, 0);
  }
  writePids();

  const onSignal = (sig: string): void => {
    if (stopping) {
      killAll();
      process.exit(130);
    }
    stopping = true;
    process.stdout.write(
      `\nl0 local: ${sig}: stopping (the trainer writes a checkpoint; Ctrl-C again to kill)\n`,
    );
    void stopChild(trainer, 120_000);
    for (const w of [...workers, ...inference]) void stopChild(w, 10_000);
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));

  const token = readFileSync(tokenFile, "utf8").trim();
  const rollout = new RolloutClient(
    `127.0.0.1:${ports.hub}`,
    grpc.credentials.createInsecure(),
    channelOptions(),
  );
  const live =
    process.stdout.isTTY && cfg.progress !== "plain" && cfg.progress !== "line"
      ? true
      : cfg.progress === "line";
  const st: ProgressState = { maxSteps, startedMs: Date.now(), firstStep: -1 };
  let outcomes: Record<string, number> = {};
  let lastStep = -1;
  let lastEval = -1;
  let ticks = 0;
  const timer = setInterval(() => {
    void (async () => {
      const s: l0.v1.StatsResponse | null = await call(
        rollout.stats,
        rollout,
        {},
        { token, timeoutMs: 2000 },
      ).catch(() => null);
      if (!s) return;
      if (st.firstStep < 0) {
        st.firstStep = Number(s.step);
        st.startedMs = Date.now();
      }
      if (ticks++ % 5 === 0)
        outcomes = await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)
          .then((r) => r.text())
          .then(episodeOutcomes)
          .catch(() => outcomes);
      if (cfg.progress === "off") return;
      const text = progressLine(s, st, Date.now());
      if (live) process.stdout.write(`\r\x1b[2K${text}`);
      else if (Number(s.step) !== lastStep || Number(s.evalAccuracy) !== lastEval) say(text);
      lastStep = Number(s.step);
      lastEval = Number(s.evalAccuracy);
    })();
  }, 1000);

  // A crashed trainer (hub and learner with it) is restarted from the run's last checkpoint, up
  // to spec.trainer.maxRestarts times, as the operator restarts its Job; the workers keep running
  // and reconnect, and their episodes of the lost step are leased again.
  const maxRestarts = run.spec.trainer?.maxRestarts ?? 3;
  let code = await trainer.exited;
  for (let attempt = 1; code !== 0 && !stopping && attempt <= maxRestarts; attempt++) {
    say(
      `l0 local: the trainer exited with code ${code}; restarting it from the last checkpoint ` +
        `(restart ${attempt} of ${maxRestarts}, spec.trainer.maxRestarts)`,
    );
    gang.forEach(killGroup); // its learner too, so the new one can bind the same ports
    gang = startGang(L0_BIN, trainerPlans(run, paths, ports, warm, attempt), env);
    trainer = gang[0]!;
    children[0] = trainer;
    writePids();
    code = await trainer.exited;
  }
  clearInterval(timer);
  over = true;
  await Promise.all([...workers, ...inference].map((w) => stopChild(w, 10_000)));
  rollout.close();
  if (live) process.stdout.write("\n");
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
  if (code !== 0 && !stopping) {
    say(`l0 local: the trainer exited with code ${code}; see ${trainer.plan.logFile}`);
    say(summaryTable(summary));
    process.exitCode = 1;
    return;
  }
  say(stopping ? "l0 local: stopped; run the same command again to resume." : "l0 local: done.");
  say(summaryTable(summary));
  say(`  plot: ${join(runDir, "plot.svg")}   summary: ${join(runDir, "summary.json")}`);
}
