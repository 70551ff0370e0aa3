// Evaluation benchmark: a freshly warm-started tiny model (the learner's CPU engine, warm-started
// on tiny-qa demonstrations exactly as `l0 local -f examples/tiny-qa.yaml` does before RL) is
// evaluated through `l0 eval` on the shipped SimpleQA CSV and HotpotQA JSON samples, with a
// scripted judge endpoint (grades A when the normalized answer equals the reference, B
// otherwise; it stands in for an LLM judge, whose protocol it speaks). Last line: one JSON object.
//   npm run bench -- eval                      (a fresh warm start)
//   npm run bench -- eval runs/tiny-qa/checkpoints/step-000150/learner   (what l0 local trained;
//   the step `checkpoints/latest` names)
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readTrainingRun } from "../../lib/run-config.js";
import { warmStartFlags } from "../../images/trainer/trainer/warm-start.js";
import { detectCgroups } from "../../images/worker/sandbox/cgroup.js";
import { emit, round } from "./stats.js";
import { scriptedJudge } from "../eval/fixtures/judge.js";

const RUN = "examples/tiny-qa.yaml";
const SETS = ["examples/eval/simpleqa-sample.csv", "examples/eval/hotpotqa-sample.json"];

/**
 * Starts the learner (a warm start, or the learner checkpoint `load`, then its CPU engine);
 * resolves with the engine's base URL.
 */
function startEngine(dir: string, load: string | undefined): Promise<{ child: ChildProcess; url: string }> {
  // The run's own warm start (spec.warmStart: the demonstrations file tiny-qa names).
  const w = warmStartFlags(readTrainingRun(RUN).spec.warmStart, RUN, false);
  if (!("sftData" in w)) throw new Error(`${RUN} has no spec.warmStart`);
  writeFileSync(join(dir, "token"), "bench-token");
  const warm = [
    "--sft-data",
    w.sftData,
    "--sft-epochs",
    String(w.sftEpochs),
    "--sft-batch-size",
    String(w.sftBatchSize),
    "--sft-learning-rate",
    String(w.sftLearningRate),
  ];
  const args = [
    "bin/l0.js",
    "learner",
    "--run-config",
    RUN,
    "--token-file",
    join(dir, "token"),
    "--port",
    "0",
    "--engine-port",
    "0",
    ...(load ? ["--load-dir", load] : warm),
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (c: Buffer): void => {
      out += c.toString();
      const m = /"engine_url":\s*"([^"]+)"/.exec(out);
      if (m) resolve({ child, url: m[1]!.replace(/\/v1$/, "") });
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`learner exited ${code}: ${out.slice(-2000)}`)));
  });
}

interface EvalSummary {
  questions: number;
  em: number;
  f1: number;
  meanTurns: number;
  judge: { correct: number; incorrect: number; notAttempted: number; failed: number };
}

const t0 = performance.now();
const dir = mkdtempSync(join(tmpdir(), "l0-bench-eval-"));
const judge = await scriptedJudge();
const load = process.argv[2];
const engine = await startEngine(dir, load);
const warmSeconds = (performance.now() - t0) / 1000;
const summaries: EvalSummary[] = [];
try {
  for (const [i, data] of SETS.entries()) {
    const out = join(dir, `eval-${i}`);
    // Asynchronously: the scripted judge answers from this process's event loop.
    const child = spawn(
      process.execPath,
      [
        "bin/l0.js",
        "eval",
        "-f",
        RUN,
        "--data",
        data,
        "--out",
        out,
        "--engine-url",
        engine.url,
        "--judge-url",
        judge.url,
        "--judge-model",
        "scripted",
        "--concurrency",
        "4",
        "--log-level",
        "warn",
        "--search-backend",
        "local",
        "--search-corpus",
        "examples/tiny-qa/corpus.jsonl",
        "--sandbox-mode",
        detectCgroups().pidsParent ? "strict" : "weak",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let stdout = "";
    child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
    const code = await new Promise((r) => child.once("exit", r));
    process.stdout.write(`\n${data}\n${stdout}`);
    if (code !== 0) throw new Error(`l0 eval on ${data} exited ${String(code)}`);
    summaries.push(JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as EvalSummary);
  }
} finally {
  engine.child.kill("SIGTERM");
  await judge.close();
}
const n = summaries.reduce((a, s) => a + s.questions, 0);
const weighted = (f: (s: EvalSummary) => number): number =>
  round(summaries.reduce((a, s) => a + f(s) * s.questions, 0) / Math.max(1, n));
const sum = (f: (s: EvalSummary) => number): number => summaries.reduce((a, s) => a + f(s), 0);
const model = load ? `checkpoint ${load}` : "a fresh warm start";
process.stdout.write(
  `\nmodel: ${model} (${round(warmSeconds, 1)} s to serve); judge: scripted (normalized exact match)\n`,
);
emit({
  bench: "eval",
  questions: n,
  em: weighted((s) => s.em),
  f1: weighted((s) => s.f1),
  judge_correct: sum((s) => s.judge.correct),
  judge_incorrect: sum((s) => s.judge.incorrect),
  judge_not_attempted: sum((s) => s.judge.notAttempted),
  judge_failed: sum((s) => s.judge.failed),
  mean_turns: weighted((s) => s.meanTurns),
  minutes: round((performance.now() - t0) / 60_000, 2),
});
