// Starts `node bin/l0.js local -f <file> --run-dir <dir> --progress plain` for the end-to-end
// tests, collecting its output; `done` resolves with the exit code.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..", "..");
const EX = join(ROOT, "examples", "tiny-qa");

/** The first `n` tiny-qa demonstrations (examples/tiny-qa/demos.jsonl) into `dir`; returns the path. */
export function headDemos(dir: string, n: number): string {
  const lines = readFileSync(join(EX, "demos.jsonl"), "utf8").split("\n").slice(0, n);
  const path = join(dir, `demos-${n}.jsonl`);
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

/**
 * A short tiny-qa TrainingRun for the end-to-end tests: 2 workers, groups and batches of 2,
 * single-cell episodes, a checkpoint every step; `warmStart` names a demonstrations file (none:
 * no warm start); `extra` adds spec lines (e.g. `inference: ...`).
 */
export function shortRun(
  name: string,
  steps: number,
  o: { learningRate?: string; extra?: string; warmStart?: string } = {},
): string {
  return `apiVersion: l0.dev/v1alpha1
kind: TrainingRun
metadata: { name: ${name} }
spec:
  model: { name: tiny }
  dataset: { path: ${EX}/train.jsonl, evalPath: ${EX}/eval.jsonl, evalEvery: 2, evalSize: 4, shuffleSeed: 3 }
  algorithm: { name: grpo, groupSize: 2, batchSize: 2, maxSteps: ${steps}, learningRate: ${o.learningRate ?? "1.0e-4"}, dynamicSampling: false }
  agent: { maxTurns: 1, maxTokensPerTurn: 32, contextBudget: 1000, tools: [search] }
  workers: { replicas: 2, episodesPerWorker: 2, tools: { search: { backend: local, corpusPath: ${EX}/corpus.jsonl } } }
  checkpoint: { everySteps: 1, keep: 2 }
${o.warmStart ? `  warmStart: { path: ${o.warmStart} }\n` : ""}${o.extra ?? ""}`;
}

export interface LocalRun {
  proc: ChildProcess;
  out: () => string;
  done: Promise<number | null>;
}

export function startLocal(
  file: string,
  runDir: string,
  opts: { args?: string[]; env?: NodeJS.ProcessEnv; uid?: number } = {},
): LocalRun {
  let out = "";
  const proc = spawn(
    process.execPath,
    [
      join(ROOT, "bin", "l0.js"),
      "local",
      "-f",
      file,
      "--run-dir",
      runDir,
      "--progress",
      "plain",
      ...(opts.args ?? []),
    ],
    { env: { ...process.env, ...opts.env }, ...(opts.uid ? { uid: opts.uid, gid: opts.uid } : {}) },
  );
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  return { proc, out: () => out, done };
}
