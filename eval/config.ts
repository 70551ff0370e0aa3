// `l0 eval` flags (lib/config.ts: flag, L0_EVAL_* variable, default). Agent settings and reward
// weights come from a TrainingRun (-f, or one with the CRD's defaults); the sandbox and tool
// settings are the worker's own flags, taken from WORKER_CONFIG so no default is restated.
import { defineConfig, LOG_CONFIG } from "../lib/config.js";
import { WORKER_CONFIG } from "../images/worker/config.js";

export const EVAL_ENV_PREFIX = "L0_EVAL_";

const W = WORKER_CONFIG;

export const EVAL_CONFIG = defineConfig({
  data: {
    type: "string",
    required: true,
    description: "Dataset file (SimpleQA CSV, HotpotQA JSON, JSONL or Parquet)",
  },
  format: {
    type: "enum",
    values: ["auto", "simpleqa", "hotpotqa", "jsonl", "parquet"] as const,
    default: "auto",
    description: "Dataset format; auto: .csv SimpleQA, .json HotpotQA, .parquet Parquet, anything else JSONL",
  },
  idField: {
    type: "string",
    default: "id",
    description: "JSONL and Parquet: the id field (line-N / row-N where absent)",
  },
  questionField: {
    type: "string",
    description: "JSONL and Parquet: the question field (default: the run's spec.dataset.questionField)",
  },
  answerField: {
    type: "string",
    description:
      "JSONL and Parquet: the answer field, a string or list (default: the run's spec.dataset.answerField)",
  },
  skipBad: {
    type: "bool",
    default: false,
    description: "Skip broken records (each reported with its line number) instead of stopping at the first",
  },
  limit: { type: "int", default: 0, min: 0, description: "Evaluate only the first N questions (0 = all)" },
  out: {
    type: "string",
    required: true,
    description: "Output directory: results.jsonl (resumed when present) and summary.json",
  },
  engineUrl: W.engineUrl,
  engineApi: {
    type: "enum",
    values: ["completions", "chat"] as const,
    default: "completions",
    description:
      "completions: the engine contract, token in, token out (vLLM, SGLang, the CPU engine); chat: only /v1/chat/completions (a hosted API; text only)",
  },
  engineKeyFile: {
    type: "string",
    default: "",
    description: "File holding the engine's API key (--engine-api chat)",
  },
  model: {
    type: "string",
    description: "Model name sent to the engine (default: the run's spec.model.name)",
  },
  temperature: {
    type: "number",
    min: 0,
    description: "Sampling temperature (default: the run's spec.agent.temperature)",
  },
  concurrency: { type: "int", default: 4, min: 1, max: 1024, description: "Episodes run at once" },
  episodeAttempts: {
    type: "int",
    default: 3,
    min: 1,
    max: 20,
    description:
      "Runs of a question whose episode ends for infrastructure reasons before it counts as failed",
  },
  judgeUrl: {
    type: "string",
    pattern: /^https?:\/\//,
    description:
      "Base URL of an OpenAI-compatible judge (/v1/chat/completions); default: the run's spec.evaluation.judge (-f), no judge without either",
  },
  judgeModel: { type: "string", default: "", description: "Model name sent to the judge" },
  judgeKeyFile: {
    type: "string",
    default: "",
    description: "File holding the judge's API key, if it needs one",
  },
  judgeAttempts: {
    type: "int",
    default: 3,
    min: 1,
    max: 20,
    description: "Judge requests per answer before it counts as judge_failed (never as incorrect)",
  },
  judgeTimeout: { type: "duration", default: "60s", description: "Deadline of one judge request" },
  engineTimeout: W.engineTimeout,
  engineAttempts: W.engineAttempts,
  observationChars: W.observationChars,
  sandboxMode: W.sandboxMode,
  cpuSeconds: W.cpuSeconds,
  memoryMib: W.memoryMib,
  maxProcesses: W.maxProcesses,
  diskMib: W.diskMib,
  fileSizeMib: W.fileSizeMib,
  openFiles: W.openFiles,
  memoryHeadroomMib: W.memoryHeadroomMib,
  wallSeconds: W.wallSeconds,
  uidBase: W.uidBase,
  uidRange: W.uidRange,
  searchBackend: W.searchBackend,
  searchCorpus: W.searchCorpus,
  searchUrl: W.searchUrl,
  searchKeyFile: W.searchKeyFile,
  ...LOG_CONFIG,
});
