// The question set: JSON Lines with a question field and an answer field (a string or a list
// of acceptable strings), field names from the TrainingRun's `spec.dataset`. A broken line is
// reported with its line number and skipped, never fatal; an empty result is. Also the
// seeded per-epoch order in which questions are drawn.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { invalidField } from "../../../lib/errors.js";
import { type Logger } from "../../../lib/log.js";
import { mulberry32 } from "../../../lib/rng.js";

export interface Question {
  /** 0-based index in the file's good lines; stable for checkpoints. */
  index: number;
  /** 1-based line number in the file, for messages. */
  line: number;
  prompt: string;
  /** Acceptable answers (ground truth). Never sent to workers. */
  answers: string[];
}

export interface LineError {
  line: number;
  message: string;
}

export interface Dataset {
  source: string;
  questions: Question[];
  errors: LineError[];
}

export interface FieldNames {
  questionField: string;
  answerField: string;
}

/** Parses JSONL text. Blank lines are ignored; every other bad line becomes a LineError. */
export function parseJsonl(text: string, fields: FieldNames, source = "dataset"): Dataset {
  const questions: Question[] = [];
  const errors: LineError[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === "") continue;
    const line = i + 1;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (err) {
      errors.push({ line, message: `not valid JSON: ${(err as Error).message}` });
      continue;
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
      errors.push({ line, message: "must be a JSON object" });
      continue;
    }
    const o = obj as Record<string, unknown>;
    const q = o[fields.questionField];
    if (typeof q !== "string" || q.trim() === "") {
      errors.push({ line, message: `field "${fields.questionField}" must be a non-empty string` });
      continue;
    }
    const a = o[fields.answerField];
    const answers = typeof a === "string" ? [a] : Array.isArray(a) ? a : null;
    if (
      answers === null ||
      answers.length === 0 ||
      !answers.every((x): x is string => typeof x === "string" && x.trim() !== "")
    ) {
      errors.push({
        line,
        message: `field "${fields.answerField}" must be a non-empty string or a non-empty list of them`,
      });
      continue;
    }
    questions.push({ index: questions.length, line, prompt: q, answers });
  }
  return { source, questions, errors };
}

/** Reads a JSONL file; fails (naming the field) only when the file is unreadable or has no good line. */
export function loadDataset(path: string, fields: FieldNames, field = "spec.dataset.path"): Dataset {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw invalidField(field, `cannot read ${path}: ${(err as Error).message}`);
  }
  const ds = parseJsonl(text, fields, path);
  if (ds.questions.length === 0) {
    const first = ds.errors[0];
    throw invalidField(
      field,
      `${path} has no usable question` +
        (first ? ` (line ${first.line}: ${first.message})` : " (empty file)"),
    );
  }
  return ds;
}

/** The order of question indices in one epoch: a Fisher-Yates shuffle seeded by (seed, epoch). */
export function epochOrder(size: number, seed: number, epoch: number): number[] {
  const order = Array.from({ length: size }, (_, i) => i);
  const r = mulberry32((seed * 1_000_003 + epoch * 7919 + 1) | 0);
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** Where the next question comes from; saved in the checkpoint. */
export interface Cursor {
  epoch: number;
  position: number;
}

/** Draws questions epoch after epoch in seeded order. */
export class QuestionSource {
  #order: number[];
  readonly cursor: Cursor;

  constructor(
    readonly dataset: Dataset,
    readonly seed: number,
    cursor: Cursor = { epoch: 0, position: 0 },
  ) {
    this.cursor = { ...cursor };
    this.#order = epochOrder(dataset.questions.length, seed, this.cursor.epoch);
  }

  next(): Question {
    if (this.cursor.position >= this.#order.length) {
      this.cursor.epoch++;
      this.cursor.position = 0;
      this.#order = epochOrder(this.dataset.questions.length, this.seed, this.cursor.epoch);
    }
    return this.dataset.questions[this.#order[this.cursor.position++]!]!;
  }
}

/**
 * The run's training and held-out sets. Relative paths are relative to the manifest (`l0 local`);
 * pods mount absolute ones.
 */
export function loadRunDatasets(
  d: { path: string; evalPath?: string } & FieldNames,
  runConfigPath: string,
): { train: Dataset; eval?: Dataset } {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(dirname(runConfigPath), p));
  const fields = { questionField: d.questionField, answerField: d.answerField };
  return {
    train: loadDataset(at(d.path), fields, "spec.dataset.path"),
    eval: d.evalPath ? loadDataset(at(d.evalPath), fields, "spec.dataset.evalPath") : undefined,
  };
}

/** Logs the first skipped lines of each dataset (each names its line) and counts them all. */
export function reportSkippedLines(
  log: Logger,
  metrics: { datasetLinesSkipped: { inc(labels: { dataset: string }, n: number): void } },
  datasets: Record<string, Dataset | undefined>,
): void {
  const SHOWN = 20;
  for (const [name, ds] of Object.entries(datasets)) {
    if (!ds || ds.errors.length === 0) continue;
    metrics.datasetLinesSkipped.inc({ dataset: name }, ds.errors.length);
    for (const e of ds.errors.slice(0, SHOWN))
      log.warn("dataset line skipped", { dataset: ds.source, line: e.line, problem: e.message });
    if (ds.errors.length > SHOWN)
      log.warn("more dataset lines skipped", { dataset: ds.source, count: ds.errors.length - SHOWN });
  }
}
