// `l0 eval`: NB-Agent episodes over a dataset against an engine, with the worker's episode code,
// sandbox and tools; per-question results in <out>/results.jsonl (resumed: finished questions
// are never asked again), <out>/summary.json and a terminal table. docs/eval.md.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadConfig, type ConfigOf } from "../lib/config.js";
import { L0Error, invalidField } from "../lib/errors.js";
import { createLogger } from "../lib/log.js";
import { createRegistry } from "../lib/metrics.js";
import { parseTrainingRun, readTrainingRun } from "../lib/run-config.js";
import { readSecretFile } from "../lib/secrets.js";
import { type ResolvedTrainingRun } from "../gen/crds/index.js";
import { hubSettings } from "../images/trainer/hub/settings.js";
import { EngineClient } from "../images/worker/engine.js";
import { createWorkerMetrics } from "../images/worker/metrics.js";
import { buildTools, startSandbox } from "../images/worker/main.js";
import { ChatEngine } from "./chat-engine.js";
import { EVAL_CONFIG, EVAL_ENV_PREFIX } from "./config.js";
import { type EvalQuestion, formatOf, readDataset } from "./datasets.js";
import { Judge, type JudgeOptions } from "../images/trainer/hub/judge.js";
import {
  appendResult,
  loadResults,
  type QuestionResult,
  repairTail,
  summarize,
  summaryTable,
} from "./results.js";
import { runEval } from "./runner.js";

type Config = ConfigOf<typeof EVAL_CONFIG>;

/** The run whose agent settings and reward weights the evaluation uses: -f, or the CRD's defaults. */
function evalRun(file: string | undefined, cfg: Config): ResolvedTrainingRun {
  if (file) return readTrainingRun(resolve(file));
  if (!cfg.model)
    throw invalidField("--model (L0_EVAL_MODEL)", "is required without -f (a TrainingRun naming the model)");
  return parseTrainingRun(
    {
      apiVersion: "l0.dev/v1alpha1",
      kind: "TrainingRun",
      metadata: { name: "eval", namespace: "default" },
      spec: { model: { name: cfg.model }, dataset: { path: cfg.data }, workers: {} },
    },
    "the default TrainingRun",
  );
}

async function questionsOf(
  cfg: Config,
  run: ResolvedTrainingRun,
): Promise<{ questions: EvalQuestion[]; bad: number }> {
  const ds = await readDataset(cfg.data, {
    format: cfg.format === "auto" ? formatOf(cfg.data) : cfg.format,
    idField: cfg.idField,
    questionField: cfg.questionField ?? run.spec.dataset.questionField,
    answerField: cfg.answerField ?? run.spec.dataset.answerField,
    skipBad: cfg.skipBad,
  });
  for (const b of ds.bad) process.stderr.write(`l0 eval: ${cfg.data}:${b.line}: skipped: ${b.error}\n`);
  return { questions: cfg.limit > 0 ? ds.questions.slice(0, cfg.limit) : ds.questions, bad: ds.bad.length };
}

function engineOf(cfg: Config): EngineClient {
  const common = {
    baseUrl: cfg.engineUrl,
    timeoutMs: cfg.engineTimeout,
    attempts: cfg.engineAttempts,
    backoffMs: 500,
  };
  if (cfg.engineApi === "completions") return new EngineClient({ ...common, maxConcurrent: cfg.concurrency });
  const apiKey = cfg.engineKeyFile
    ? readSecretFile(cfg.engineKeyFile, "--engine-key-file (L0_EVAL_ENGINE_KEY_FILE)")
    : "";
  return new ChatEngine({ ...common, apiKey });
}

/**
 * Pure: the judge's settings: the flags' (--judge-url), else the run's spec.evaluation.judge (the
 * judge its training run grades with), else none. `keyed`: the run names a Secret for the key.
 */
export function judgeSettings(
  cfg: Pick<Config, "judgeUrl" | "judgeModel" | "judgeAttempts" | "judgeTimeout">,
  run: ResolvedTrainingRun,
): (Omit<JudgeOptions, "apiKey"> & { keyed: boolean }) | null {
  const backoffMs = 500;
  if (cfg.judgeUrl)
    return {
      baseUrl: cfg.judgeUrl,
      model: cfg.judgeModel,
      attempts: cfg.judgeAttempts,
      timeoutMs: cfg.judgeTimeout,
      backoffMs,
      keyed: false,
    };
  const j = run.spec.evaluation?.judge;
  if (!j) return null;
  return {
    baseUrl: j.url,
    model: j.model,
    attempts: j.attempts,
    timeoutMs: j.timeoutSeconds * 1000,
    backoffMs,
    keyed: j.secretRef !== undefined,
  };
}

function judgeOf(cfg: Config, run: ResolvedTrainingRun): Judge | null {
  const j = judgeSettings(cfg, run);
  if (!j) return null;
  const flag = "--judge-key-file (L0_EVAL_JUDGE_KEY_FILE)";
  if (j.keyed && !cfg.judgeKeyFile)
    throw invalidField(
      flag,
      "is required: the run's spec.evaluation.judge.secretRef names a Secret for the judge's key",
    );
  return new Judge({ ...j, apiKey: cfg.judgeKeyFile ? readSecretFile(cfg.judgeKeyFile, flag) : "" });
}

export async function main(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const cfg = loadConfig(EVAL_CONFIG, { flags, env, envPrefix: EVAL_ENV_PREFIX });
  const run = evalRun(flags.file as string | undefined, cfg);
  const settings = hubSettings(run);
  const agent = {
    ...settings.agent,
    model: cfg.model ?? settings.agent.model,
    temperature: cfg.temperature ?? settings.agent.temperature,
  };
  const judge = judgeOf(cfg, run);
  const { questions, bad } = await questionsOf(cfg, run);
  mkdirSync(cfg.out, { recursive: true });
  const resultsPath = join(cfg.out, "results.jsonl");
  repairTail(resultsPath);
  const done = loadResults(resultsPath);
  const todo = questions.filter((q) => !done.has(q.id));
  const logger = createLogger({ component: "eval", level: cfg.logLevel, format: cfg.logFormat });
  const metrics = createWorkerMetrics(
    createRegistry({ labels: { component: "eval" }, defaultMetrics: false }),
  );
  const { pool, guard } = startSandbox(
    { ...cfg, warmKernels: 0, episodes: cfg.concurrency },
    logger,
    metrics,
  );
  const engine = engineOf(cfg);
  const deps = {
    kernels: pool,
    engine,
    tools: buildTools(cfg),
    metrics,
    logger,
    workerId: "eval",
    observationChars: cfg.observationChars,
    maxEpisodeSeconds: cfg.wallSeconds,
  };
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
  const results: QuestionResult[] = questions.flatMap((q) => (done.has(q.id) ? [done.get(q.id)!] : []));
  const progress = (): void =>
    void process.stderr.write(
      `\rl0 eval: ${results.length}/${questions.length} done (${done.size} from before), ` +
        `${results.filter((r) => r.status === "failed").length} failed${process.stderr.isTTY ? "" : "\n"}`,
    );
  progress();
  try {
    await pool.fill();
    if (pool.idle === 0) throw new L0Error("FailedPrecondition", "the sandbox could not start any kernel");
    guard.start();
    await runEval(todo, deps, {
      agent,
      weights: settings.weights,
      concurrency: cfg.concurrency,
      episodeAttempts: cfg.episodeAttempts,
      judge,
      signal: stop.signal,
      onResult: (r) => {
        appendResult(resultsPath, r);
        results.push(r);
        progress();
      },
    });
  } finally {
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
    guard.stop();
    await pool.close();
  }
  process.stderr.write("\n");
  const summary = {
    ...summarize(results, judge !== null),
    skippedRecords: bad,
    complete: !stop.signal.aborted,
  };
  writeFileSync(join(cfg.out, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
  process.stdout.write(
    summaryTable(summary) + `\nresults: ${resultsPath}\nsummary: ${join(cfg.out, "summary.json")}\n`,
  );
  if (stop.signal.aborted)
    throw new L0Error("Unavailable", "interrupted: run the same command again to resume");
}
