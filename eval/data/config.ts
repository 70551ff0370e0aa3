// `l0 data` flags (lib/config.ts: flag, L0_DATA_* variable, default). The inputs are arguments:
// `[data_source=]path`, each in any format the dataset readers know (eval/datasets.ts).
import { defineConfig } from "../../lib/config.js";

export const DATA_ENV_PREFIX = "L0_DATA_";

export const DATA_CONFIG = defineConfig({
  format: {
    type: "enum",
    values: ["auto", "simpleqa", "hotpotqa", "jsonl", "parquet"] as const,
    default: "auto",
    description:
      "Format of every input; auto: by extension (.csv SimpleQA, .json HotpotQA, .parquet Parquet, else JSONL)",
  },
  idField: {
    type: "string",
    default: "id",
    description: "JSONL and Parquet: the id field (line-N / row-N where absent)",
  },
  questionField: {
    type: "string",
    default: "question",
    description: "JSONL and Parquet: the question field",
  },
  answerField: {
    type: "string",
    default: "answer",
    description: "JSONL and Parquet: the answer field, a string or a list of strings",
  },
  out: {
    type: "string",
    description: "Output JSONL file; with --split, a directory that gets train.jsonl and eval.jsonl",
  },
  trainOut: { type: "string", description: "Training JSONL file (with --split and --eval-out)" },
  evalOut: { type: "string", description: "Held-out JSONL file (with --split and --train-out)" },
  split: {
    type: "number",
    min: 0,
    max: 1,
    description: "Fraction of the questions that go to training (e.g. 0.9); the rest are held out",
  },
  seed: { type: "int", default: 0, description: "Seed of the split's shuffle" },
  dedupe: {
    type: "bool",
    default: false,
    description: "Drop later copies of a question (compared normalized: case, punctuation, articles)",
  },
  onError: {
    type: "enum",
    values: ["fail", "skip"] as const,
    default: "fail",
    description: "A broken record: fail (exit 2 naming file and line) or skip (reported and counted)",
  },
  difficulty: {
    type: "string",
    description:
      "Comma-separated l0 eval results.jsonl files: pass rates per question for --min/--max-pass-rate",
  },
  minPassRate: {
    type: "number",
    min: 0,
    max: 1,
    default: 0,
    description: "Drop questions solved less often than this (needs --difficulty)",
  },
  maxPassRate: {
    type: "number",
    min: 0,
    max: 1,
    default: 1,
    description: "Drop questions solved more often than this (needs --difficulty)",
  },
  output: {
    type: "enum",
    values: ["text", "json"] as const,
    default: "text",
    description: "Summary format: text on stderr, or json on stdout",
  },
});
