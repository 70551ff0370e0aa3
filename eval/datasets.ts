// Evaluation datasets as they come: SimpleQA's CSV (`metadata, problem, answer`), HotpotQA's JSON
// (an array of `{_id, question, answer, type, level, ...}`), JSONL with configurable fields, and
// Parquet (what Hugging Face datasets ship) with the same fields. Pure parsers over text or bytes;
// a broken record is reported with its line (Parquet: row) number, and either skipped (listed in
// `bad`) or fatal, never silently dropped.
import { readFileSync } from "node:fs";
import { parquetReadObjects } from "hyparquet";
import { invalidField } from "../lib/errors.js";

export type DatasetFormat = "simpleqa" | "hotpotqa" | "jsonl" | "parquet";

export interface EvalQuestion {
  /** Stable id: the dataset's own (`_id`, the id field) or `line-N` / `row-N` (1-based) where it has none. */
  id: string;
  question: string;
  /** Acceptable answers (the first is the reference the judge sees). */
  answers: string[];
  /** 1-based line of the file it came from (HotpotQA: item, Parquet: row), for messages. */
  line?: number;
  /** Kept for reports: SimpleQA's metadata, HotpotQA's type and level. */
  meta?: Record<string, unknown>;
}

export interface BadRecord {
  /** 1-based line; a JSON array's item and a Parquet file's row number stand in for one. */
  line: number;
  error: string;
}

export interface ReadOptions {
  format: DatasetFormat;
  /** JSONL and Parquet: field (column) names (dots not followed). */
  idField: string;
  questionField: string;
  answerField: string;
  /** Skip broken records (listed in `bad`) instead of failing on the first. */
  skipBad: boolean;
}

export interface Dataset {
  questions: EvalQuestion[];
  bad: BadRecord[];
}

/**
 * RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines. Returns rows with the
 * line each starts on; an unterminated quote is an error naming that line.
 */
export function parseCsv(text: string): { line: number; cells: string[] }[] {
  const rows: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = "";
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let quoteLine = 1;
  const endRow = (): void => {
    cells.push(cell);
    if (cells.length > 1 || cells[0] !== "") rows.push({ line: rowLine, cells });
    cells = [];
    cell = "";
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === "\n") line++;
        cell += c;
      }
    } else if (c === '"' && cell === "") {
      quoted = true;
      quoteLine = line;
    } else if (c === ",") {
      cells.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      endRow();
      line++;
      rowLine = line;
    } else cell += c;
  }
  if (quoted) throw new Error(`line ${quoteLine}: a quoted field is never closed`);
  endRow();
  return rows;
}

/** SimpleQA: a header naming `problem` and `answer` (and usually `metadata`), one question per row. */
export function parseSimpleQa(text: string, skipBad: boolean, source = "dataset"): Dataset {
  let rows: { line: number; cells: string[] }[];
  try {
    rows = parseCsv(text);
  } catch (err) {
    throw invalidField(source, (err as Error).message);
  }
  const header = rows.shift();
  const col = (name: string): number => header?.cells.indexOf(name) ?? -1;
  const [p, a, m] = [col("problem"), col("answer"), col("metadata")];
  if (p < 0 || a < 0)
    throw invalidField(`${source}:1`, "a SimpleQA CSV needs a header with the columns problem and answer");
  const out: Dataset = { questions: [], bad: [] };
  for (const r of rows) {
    const problem = r.cells[p]?.trim() ?? "";
    const answer = r.cells[a]?.trim() ?? "";
    const error =
      r.cells.length !== header!.cells.length
        ? `has ${r.cells.length} fields, the header ${header!.cells.length}`
        : !problem
          ? "problem is empty"
          : !answer
            ? "answer is empty"
            : null;
    if (error) {
      record(out, { line: r.line, error }, skipBad, source);
      continue;
    }
    out.questions.push({
      id: `line-${r.line}`,
      line: r.line,
      question: problem,
      answers: [answer],
      ...(m >= 0 ? { meta: { metadata: r.cells[m] } } : {}),
    });
  }
  return out;
}

/** HotpotQA: one JSON array of objects with `_id`, `question`, `answer` (`type`, `level` kept). */
export function parseHotpotQa(text: string, skipBad: boolean, source = "dataset"): Dataset {
  let items: unknown;
  try {
    items = JSON.parse(text);
  } catch (err) {
    throw invalidField(source, `not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(items)) throw invalidField(source, "a HotpotQA file is a JSON array of questions");
  const out: Dataset = { questions: [], bad: [] };
  items.forEach((item: unknown, i) => {
    const q = toQuestion(item, { idField: "_id", questionField: "question", answerField: "answer" });
    // A JSON array has no useful line numbers: the record's 1-based index stands in for one.
    if (typeof q === "string") return record(out, { line: i + 1, error: `item ${i}: ${q}` }, skipBad, source);
    const o = item as Record<string, unknown>;
    out.questions.push({
      ...q,
      id: q.id || `item-${i}`,
      line: i + 1,
      meta: { type: o.type, level: o.level },
    });
  });
  return out;
}

/** JSONL: one object per line; the answer field is a string or a list of strings. */
export function parseJsonl(
  text: string,
  fields: Pick<ReadOptions, "idField" | "questionField" | "answerField">,
  skipBad: boolean,
  source = "dataset",
): Dataset {
  const out: Dataset = { questions: [], bad: [] };
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (err) {
      return record(
        out,
        { line: i + 1, error: `not valid JSON: ${(err as Error).message}` },
        skipBad,
        source,
      );
    }
    const q = toQuestion(obj, fields);
    if (typeof q === "string") return record(out, { line: i + 1, error: q }, skipBad, source);
    out.questions.push({ ...q, id: q.id || `line-${i + 1}`, line: i + 1 });
  });
  return out;
}

/**
 * Parquet: one question per row, columns named like JSONL's fields; the answer column is a string
 * or a list of strings. Async only because hyparquet's API is; the bytes are already in memory.
 */
export async function parseParquet(
  bytes: Uint8Array,
  fields: Pick<ReadOptions, "idField" | "questionField" | "answerField">,
  skipBad: boolean,
  source = "dataset",
): Promise<Dataset> {
  let rows: Record<string, unknown>[];
  try {
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    rows = await parquetReadObjects({ file });
  } catch (err) {
    throw invalidField(source, `not a readable Parquet file: ${(err as Error).message}`);
  }
  const out: Dataset = { questions: [], bad: [] };
  rows.forEach((row, i) => {
    // INT64 ids come back as bigint; toQuestion takes a string or a number.
    const id = row[fields.idField];
    const obj = typeof id === "bigint" ? { ...row, [fields.idField]: String(id) } : row;
    const q = toQuestion(obj, fields);
    if (typeof q === "string")
      return record(out, { line: i + 1, error: `row ${i + 1}: ${q}` }, skipBad, source);
    out.questions.push({ ...q, id: q.id || `row-${i + 1}`, line: i + 1 });
  });
  return out;
}

function toQuestion(
  obj: unknown,
  f: Pick<ReadOptions, "idField" | "questionField" | "answerField">,
): EvalQuestion | string {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return "is not a JSON object";
  const o = obj as Record<string, unknown>;
  const question = o[f.questionField];
  if (typeof question !== "string" || question.trim() === "")
    return `${f.questionField} must be a non-empty string`;
  const a = o[f.answerField];
  const answers = typeof a === "string" ? [a] : Array.isArray(a) ? a : null;
  if (!answers || answers.length === 0 || answers.some((x) => typeof x !== "string" || x.trim() === ""))
    return `${f.answerField} must be a non-empty string or list of non-empty strings`;
  const id = o[f.idField];
  return {
    id: typeof id === "string" || typeof id === "number" ? String(id) : "",
    question: question.trim(),
    answers: answers as string[],
  };
}

function record(out: Dataset, bad: BadRecord, skipBad: boolean, source: string): void {
  if (!skipBad)
    throw invalidField(`${source}:${bad.line}`, `${bad.error} (skip broken records with --skip-bad)`);
  out.bad.push(bad);
}

function parseBytes(bytes: Buffer, path: string, opts: ReadOptions): Dataset | Promise<Dataset> {
  if (opts.format === "parquet") return parseParquet(bytes, opts, opts.skipBad, path);
  const text = bytes.toString("utf8");
  return opts.format === "simpleqa"
    ? parseSimpleQa(text, opts.skipBad, path)
    : opts.format === "hotpotqa"
      ? parseHotpotQa(text, opts.skipBad, path)
      : parseJsonl(text, opts, opts.skipBad, path);
}

/** Reads and parses a dataset file; duplicate ids are an error (results are keyed by id). */
export async function readDataset(path: string, opts: ReadOptions): Promise<Dataset> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw invalidField(path, `cannot read: ${(err as Error).message}`);
  }
  const ds = await parseBytes(bytes, path, opts);
  const seen = new Set<string>();
  for (const q of ds.questions) {
    if (seen.has(q.id)) throw invalidField(path, `question id ${JSON.stringify(q.id)} appears twice`);
    seen.add(q.id);
  }
  return ds;
}

/** The format a file's name suggests: .csv SimpleQA, .json HotpotQA, .parquet Parquet, anything else JSONL. */
export function formatOf(path: string): DatasetFormat {
  return path.endsWith(".csv")
    ? "simpleqa"
    : path.endsWith(".json")
      ? "hotpotqa"
      : path.endsWith(".parquet")
        ? "parquet"
        : "jsonl";
}
