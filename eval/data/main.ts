// `l0 data`: reads datasets in any supported format, each tagged with a data_source, and writes
// the trainer's JSONL (one file, or a seeded train/eval split), optionally deduplicated and
// filtered by pass rates from `l0 eval` results. I/O only: the decisions are plan.ts's. Every
// record not written is reported on stderr (the first few of each kind) and counted in the summary.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { loadConfig, type ConfigOf } from "../../lib/config.js";
import { invalidField } from "../../lib/errors.js";
import { formatOf, readDataset } from "../datasets.js";
import { DATA_CONFIG, DATA_ENV_PREFIX } from "./config.js";
import {
  checkIds,
  type DataRecord,
  dedupe,
  type Dropped,
  type EvalOutcome,
  filterByPassRate,
  type Outputs,
  outputsOf,
  parseInput,
  passRates,
  split,
  trainerLine,
} from "./plan.js";

type Config = ConfigOf<typeof DATA_CONFIG>;

/** Shown per kind of dropped record before the rest are only counted. */
const SHOWN = 20;

const say = (line: string): void => void process.stderr.write(`l0 data: ${line}\n`);

export interface InputSummary {
  path: string;
  dataSource: string;
  format: string;
  read: number;
  skipped: number;
}

export interface DataSummary {
  inputs: InputSummary[];
  skippedRecords: number;
  duplicates: number;
  tooHard: number;
  tooEasy: number;
  unrated: number;
  written: Record<string, number>;
}

async function readInput(
  arg: string,
  cfg: Config,
): Promise<{ records: DataRecord[]; summary: InputSummary }> {
  const { dataSource, path } = parseInput(arg);
  const format = cfg.format === "auto" ? formatOf(path) : cfg.format;
  const ds = await readDataset(path, { ...cfg, format, skipBad: true });
  const first = ds.bad[0];
  if (cfg.onError === "fail" && first)
    throw invalidField(
      `${path}:${first.line}`,
      `${first.error} (${ds.bad.length} broken record(s) in all; --on-error skip reports and skips them)`,
    );
  for (const b of ds.bad) say(`${path}:${b.line}: skipped: ${b.error}`);
  const records = ds.questions.map((q) => ({ ...q, dataSource, file: path, line: q.line ?? 0 }));
  say(
    `${path}: ${records.length} questions (data_source ${dataSource}, ${format}), ${ds.bad.length} skipped`,
  );
  return { records, summary: { path, dataSource, format, read: records.length, skipped: ds.bad.length } };
}

/** The scored outcomes of `l0 eval` results files; a line that is not JSON names its file and line. */
function readOutcomes(paths: string[]): EvalOutcome[] {
  return paths.flatMap((path) => {
    if (!existsSync(path)) throw invalidField("--difficulty", `${path} does not exist`);
    return readFileSync(path, "utf8")
      .split("\n")
      .flatMap((raw, i) => {
        if (!raw.trim()) return [];
        try {
          const o = JSON.parse(raw) as EvalOutcome;
          if (typeof o.question !== "string") throw new Error("has no question field");
          return [o];
        } catch (err) {
          throw invalidField(`${path}:${i + 1}`, `not an l0 eval result: ${(err as Error).message}`);
        }
      });
  });
}

function reportDropped(what: string, dropped: readonly Dropped[]): void {
  for (const d of dropped.slice(0, SHOWN))
    say(`${d.record.file}:${d.record.line}: dropped (${what}): ${d.why}`);
  if (dropped.length > SHOWN) say(`${dropped.length - SHOWN} more dropped (${what})`);
}

/** Writes next to the target and renames, so a killed run never leaves half a dataset. */
function writeJsonl(path: string, records: readonly DataRecord[]): void {
  mkdirSync(dirname(resolve(path)), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, records.map((r) => trainerLine(r) + "\n").join(""));
  renameSync(tmp, path);
  say(`wrote ${records.length} questions to ${path}`);
}

function checkFlags(cfg: Config, inputs: string[], outputs: Outputs): void {
  if (inputs.length === 0)
    throw invalidField("<input>", "give at least one dataset file ([data_source=]path)");
  if (cfg.difficulty === undefined && (cfg.minPassRate > 0 || cfg.maxPassRate < 1))
    throw invalidField("--difficulty", "is required with --min-pass-rate or --max-pass-rate");
  if (cfg.minPassRate > cfg.maxPassRate)
    throw invalidField(
      "--min-pass-rate",
      `is above --max-pass-rate (${cfg.minPassRate} > ${cfg.maxPassRate})`,
    );
  const ins = new Set(inputs.map((a) => resolve(parseInput(a).path)));
  const outs = outputs.kind === "one" ? [outputs.out] : [outputs.train, outputs.eval];
  for (const o of outs) if (ins.has(resolve(o))) throw invalidField(o, "is also an input; write elsewhere");
  if (outputs.kind === "split" && resolve(outputs.train) === resolve(outputs.eval))
    throw invalidField("--eval-out", "is the same file as --train-out");
}

function filtered(records: DataRecord[], cfg: Config, summary: DataSummary): DataRecord[] {
  let kept = records;
  if (cfg.dedupe) {
    const d = dedupe(kept);
    reportDropped("duplicate", d.dropped);
    summary.duplicates = d.dropped.length;
    kept = d.kept;
  }
  if (cfg.difficulty !== undefined) {
    const rates = passRates(readOutcomes(cfg.difficulty.split(",").filter((p) => p !== "")));
    const f = filterByPassRate(kept, rates, cfg.minPassRate, cfg.maxPassRate);
    reportDropped("difficulty", f.dropped);
    summary.tooHard = f.dropped.filter((d) => d.why.includes("below")).length;
    summary.tooEasy = f.dropped.length - summary.tooHard;
    summary.unrated = f.unrated;
    if (f.unrated > 0) say(`${f.unrated} questions have no result in --difficulty: kept`);
    kept = f.kept;
  }
  return kept;
}

function summaryText(s: DataSummary): string {
  const written = Object.entries(s.written).map(([k, v]) => `${v} to ${k}`);
  return (
    `${s.inputs.reduce((a, i) => a + i.read, 0)} read from ${s.inputs.length} input(s), ` +
    `${s.skippedRecords} broken skipped, ${s.duplicates} duplicates dropped, ` +
    `${s.tooHard} too hard and ${s.tooEasy} too easy dropped (${s.unrated} unrated kept); ` +
    `wrote ${written.join(", ")}`
  );
}

export async function main(
  inputs: string[],
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<DataSummary> {
  const cfg = loadConfig(DATA_CONFIG, { flags, env, envPrefix: DATA_ENV_PREFIX });
  const outputs = outputsOf(cfg);
  checkFlags(cfg, inputs, outputs);
  const summary: DataSummary = {
    inputs: [],
    skippedRecords: 0,
    duplicates: 0,
    tooHard: 0,
    tooEasy: 0,
    unrated: 0,
    written: {},
  };
  const records: DataRecord[] = [];
  for (const arg of inputs) {
    const r = await readInput(arg, cfg);
    summary.inputs.push(r.summary);
    summary.skippedRecords += r.summary.skipped;
    records.push(...r.records);
  }
  checkIds(records);
  const kept = filtered(records, cfg, summary);
  if (kept.length === 0) throw invalidField("<input>", "no question is left to write");
  const parts =
    outputs.kind === "one"
      ? { [outputs.out]: kept }
      : (({ train, eval: held }) => ({ [outputs.train]: train, [outputs.eval]: held }))(
          split(kept, cfg.split!, cfg.seed),
        );
  for (const [path, rs] of Object.entries(parts)) {
    writeJsonl(path, rs);
    summary.written[path] = rs.length;
  }
  if (cfg.output === "json") process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
  else say(summaryText(summary));
  return summary;
}
