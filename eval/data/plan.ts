// `l0 data`'s decisions as pure functions over records: which input is which (`data_source=path`),
// where the output goes (one file, or a seeded train/eval split), duplicates by normalized
// question, and the pass-rate filter over `l0 eval` results. Every record a step drops comes back
// with why, so the caller can report it; main.ts does the reading and writing.
import { invalidField } from "../../lib/errors.js";
import { epochOrder } from "../../images/trainer/hub/dataset.js";
import { type EvalQuestion } from "../datasets.js";

/** One question on its way to the trainer, with where it came from (for messages). */
export interface DataRecord extends EvalQuestion {
  /** The reference pipeline's `data_source` tag: which dataset a question belongs to. */
  dataSource: string;
  file: string;
  line: number;
}

export interface Dropped {
  record: DataRecord;
  why: string;
}

export interface Kept {
  kept: DataRecord[];
  dropped: Dropped[];
}

/** `data_source=path` or a bare path (the source is then the file name without its extension). */
export function parseInput(arg: string): { dataSource: string; path: string } {
  const eq = arg.indexOf("=");
  if (eq > 0) {
    const [dataSource, path] = [arg.slice(0, eq), arg.slice(eq + 1)];
    if (!/^[\w.\-/]+$/.test(dataSource))
      throw invalidField(`input ${arg}`, "data_source may hold letters, digits, _ . - / only");
    if (!path) throw invalidField(`input ${arg}`, "names no file after =");
    return { dataSource, path };
  }
  const base = arg.split("/").pop()!;
  return { dataSource: base.replace(/\.[^.]*$/, "") || base, path: arg };
}

export type Outputs = { kind: "one"; out: string } | { kind: "split"; train: string; eval: string };

/** Where the records go, from --out / --train-out / --eval-out / --split; a bad mix names its flag. */
export function outputsOf(f: { out?: string; trainOut?: string; evalOut?: string; split?: number }): Outputs {
  const pair = f.trainOut !== undefined || f.evalOut !== undefined;
  if (f.split === undefined) {
    if (pair) throw invalidField("--split", "is required with --train-out and --eval-out");
    if (f.out === undefined)
      throw invalidField("--out", "is required (or --train-out, --eval-out and --split)");
    return { kind: "one", out: f.out };
  }
  if (!(f.split > 0 && f.split < 1)) throw invalidField("--split", "must be between 0 and 1 (exclusive)");
  if (pair && f.out !== undefined)
    throw invalidField("--out", "cannot be combined with --train-out/--eval-out");
  if (f.out !== undefined)
    return { kind: "split", train: `${f.out}/train.jsonl`, eval: `${f.out}/eval.jsonl` };
  if (f.trainOut === undefined)
    throw invalidField("--train-out", "is required with --split (or give --out DIR)");
  if (f.evalOut === undefined)
    throw invalidField("--eval-out", "is required with --split (or give --out DIR)");
  return { kind: "split", train: f.trainOut, eval: f.evalOut };
}

/**
 * The dedupe key: case, width (NFKC), runs of white space and closing punctuation do not make a
 * different question. Not the hub's normalizeAnswer: it drops every symbol and punctuation mark,
 * so "What is 538 + 19?" and "What is 538 * 19?" would be one question (tiny-qa has such pairs).
 */
export function questionKey(question: string): string {
  return question
    .normalize("NFKC")
    .toLowerCase()
    .replace(/\s+/g, " ")
    .replace(/[\s.?!。？！]+$/u, "")
    .trim();
}

/** Keeps the first record of each normalized question; each later one is dropped naming the first. */
export function dedupe(records: readonly DataRecord[]): Kept {
  const first = new Map<string, DataRecord>();
  const out: Kept = { kept: [], dropped: [] };
  for (const r of records) {
    const k = questionKey(r.question);
    const seen = first.get(k);
    if (seen) out.dropped.push({ record: r, why: `duplicate of ${seen.file}:${seen.line}` });
    else {
      first.set(k, r);
      out.kept.push(r);
    }
  }
  return out;
}

/** Two records with one id would be one question to `l0 eval`'s results: an error naming both. */
export function checkIds(records: readonly DataRecord[]): void {
  const seen = new Map<string, DataRecord>();
  for (const r of records) {
    const id = outputId(r);
    const other = seen.get(id);
    if (other)
      throw invalidField(
        `${r.file}:${r.line}`,
        `id ${JSON.stringify(id)} is also ${other.file}:${other.line}; give the inputs different data_source names`,
      );
    seen.set(id, r);
  }
}

/** How often a model solved a question, over every `l0 eval` result that asked it. */
export interface PassRate {
  solved: number;
  attempts: number;
}

/** One `l0 eval` result as the filter sees it (results.jsonl's fields). */
export interface EvalOutcome {
  question: string;
  status: string;
  em: number;
  judge: { judgement: string } | null;
}

/**
 * Pass rates by normalized question. Solved: the judge said correct, or, without a judge, exact
 * match. An infrastructure failure (status failed) says nothing about difficulty: not counted.
 */
export function passRates(outcomes: readonly EvalOutcome[]): Map<string, PassRate> {
  const rates = new Map<string, PassRate>();
  for (const o of outcomes) {
    if (o.status !== "scored") continue;
    const solved =
      o.judge && o.judge.judgement !== "judge_failed" ? o.judge.judgement === "correct" : o.em >= 1;
    const k = questionKey(o.question);
    const r = rates.get(k) ?? { solved: 0, attempts: 0 };
    rates.set(k, { solved: r.solved + (solved ? 1 : 0), attempts: r.attempts + 1 });
  }
  return rates;
}

/** Drops questions whose pass rate is outside [min, max]; a question never evaluated is kept (and counted). */
export function filterByPassRate(
  records: readonly DataRecord[],
  rates: ReadonlyMap<string, PassRate>,
  min: number,
  max: number,
): Kept & { unrated: number } {
  const out = { kept: [] as DataRecord[], dropped: [] as Dropped[], unrated: 0 };
  for (const r of records) {
    const rate = rates.get(questionKey(r.question));
    if (!rate) {
      out.unrated++;
      out.kept.push(r);
      continue;
    }
    const p = rate.solved / rate.attempts;
    const pct = `${rate.solved}/${rate.attempts}`;
    if (p < min) out.dropped.push({ record: r, why: `pass rate ${pct} below --min-pass-rate ${min}` });
    else if (p > max) out.dropped.push({ record: r, why: `pass rate ${pct} above --max-pass-rate ${max}` });
    else out.kept.push(r);
  }
  return out;
}

/**
 * A seeded split: round(n * fraction) records to train, the rest to eval, chosen by the hub's
 * seeded shuffle; each side keeps the input order (so outputs diff cleanly between runs).
 */
export function split(
  records: readonly DataRecord[],
  fraction: number,
  seed: number,
): { train: DataRecord[]; eval: DataRecord[] } {
  const nTrain = Math.round(records.length * fraction);
  const inTrain = new Set(epochOrder(records.length, seed, 0).slice(0, nTrain));
  return {
    train: records.filter((_, i) => inTrain.has(i)),
    eval: records.filter((_, i) => !inTrain.has(i)),
  };
}

/** Ids are unique per data_source in the output: `data_source/id`. */
export const outputId = (r: DataRecord): string => `${r.dataSource}/${r.id}`;

/** One line of the trainer's dataset (spec.dataset's default fields question/answer; the rest kept). */
export function trainerLine(r: DataRecord): string {
  return JSON.stringify({
    id: outputId(r),
    question: r.question,
    answer: r.answers,
    data_source: r.dataSource,
    ...(r.meta ? { meta: r.meta } : {}),
  });
}
