// `l0 data` as a user runs it: four formats in (a Parquet file written here), broken records
// reported by file and line, duplicates and pass-rate extremes dropped, a seeded split out, a JSON
// summary on stdout; and exit 2 with one line naming the flag or path when the input is wrong.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";

const L0 = join(resolve(import.meta.dirname, "..", ".."), "bin", "l0.js");
const l0 = (...args: string[]) => spawnSync(process.execPath, [L0, "data", ...args], { encoding: "utf8" });
const lines = (path: string) =>
  readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { id: string; question: string; data_source: string });

describe("l0 data (command)", function () {
  this.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), "l0-data-"));
  const pq = join(dir, "nq.parquet");
  writeFileSync(
    pq,
    new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          {
            name: "question",
            data: ["Who wrote Hamlet?", null, "Capital of Peru?", "Tallest mountain?"],
            type: "STRING",
          },
          { name: "answer", data: [["Shakespeare"], ["x"], ["Lima"], ["Everest"]] },
        ],
      }),
    ),
  );
  const jsonl = join(dir, "extra.jsonl");
  writeFileSync(
    jsonl,
    '{"id":"e1","question":"who wrote hamlet","answer":"Shakespeare"}\n{"id":"e2","question":\n',
  );
  const results = join(dir, "results.jsonl");
  writeFileSync(
    results,
    [
      { id: "x", question: "Capital of Peru?", status: "scored", em: 0, judge: null },
      { id: "y", question: "Tallest mountain?", status: "scored", em: 1, judge: null },
    ]
      .map((r) => JSON.stringify(r))
      .join("\n") + "\n",
  );

  it("merges four formats, skips and reports broken records, dedupes, filters, splits", () => {
    const out = join(dir, "qa");
    const r = l0(
      `nq=${pq}`,
      "hotpotqa=examples/eval/hotpotqa-sample.json",
      "simpleqa=examples/eval/simpleqa-sample.csv",
      jsonl,
      ...["--on-error", "skip", "--dedupe", "--difficulty", results, "--min-pass-rate", "0.01"],
      ...["--split", "0.75", "--seed", "5", "--out", out, "--output", "json"],
    );
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.contain(`${pq}:2: skipped: row 2: question must be a non-empty string`);
    expect(r.stderr).to.contain(`${jsonl}:2: skipped: not valid JSON`);
    expect(r.stderr).to.contain(`${jsonl}:1: dropped (duplicate): duplicate of ${pq}:1`);
    expect(r.stderr).to.contain(`${pq}:3: dropped (difficulty): pass rate 0/1 below --min-pass-rate 0.01`);
    const s = JSON.parse(r.stdout);
    expect(s.inputs.map((i: any) => [i.dataSource, i.format, i.read, i.skipped])).to.deep.equal([
      ["nq", "parquet", 3, 1],
      ["hotpotqa", "hotpotqa", 12, 0],
      ["simpleqa", "simpleqa", 12, 0],
      ["extra", "jsonl", 1, 1],
    ]);
    expect(s).to.include({ skippedRecords: 2, duplicates: 1, tooHard: 1, tooEasy: 0, unrated: 25 });
    const [train, held] = [lines(join(out, "train.jsonl")), lines(join(out, "eval.jsonl"))];
    expect([train.length, held.length]).to.deep.equal([20, 6]);
    expect(s.written).to.deep.equal({ [join(out, "train.jsonl")]: 20, [join(out, "eval.jsonl")]: 6 });
    const all = [...train, ...held];
    expect(
      all
        .filter((q) => q.data_source === "nq")
        .map((q) => q.id)
        .sort(),
    ).to.deep.equal(["nq/row-1", "nq/row-4"]);
    expect(new Set(all.map((q) => q.data_source))).to.deep.equal(new Set(["nq", "hotpotqa", "simpleqa"]));
    const again = l0(
      `nq=${pq}`,
      "hotpotqa=examples/eval/hotpotqa-sample.json",
      "simpleqa=examples/eval/simpleqa-sample.csv",
      jsonl,
      ...["--on-error", "skip", "--dedupe", "--difficulty", results, "--min-pass-rate", "0.01"],
      ...[
        "--split",
        "0.75",
        "--seed",
        "5",
        "--train-out",
        join(dir, "t2.jsonl"),
        "--eval-out",
        join(dir, "e2.jsonl"),
      ],
    );
    expect(again.status, again.stderr).to.equal(0);
    expect(lines(join(dir, "e2.jsonl"))).to.deep.equal(held);
  });

  const bad: [string, string[], RegExp][] = [
    [
      "a broken record without --on-error skip",
      ["IN_JSONL", "--out", "o.jsonl"],
      /extra\.jsonl:2: not valid JSON.*1 broken record/,
    ],
    ["a missing input", ["nope.jsonl", "--out", "o.jsonl"], /nope\.jsonl: cannot read/],
    ["no output", ["IN_JSONL"], /--out: is required/],
    [
      "a pass rate without --difficulty",
      ["IN_PQ", "--out", "o.jsonl", "--max-pass-rate", "0.9"],
      /--difficulty: is required/,
    ],
    [
      "a missing --difficulty file",
      ["IN_PQ", "--out", "o.jsonl", "--difficulty", "no.jsonl", "--on-error", "skip"],
      /--difficulty: no\.jsonl does not exist/,
    ],
    [
      "an output that is an input",
      ["IN_PQ", "--out", "IN_PQ", "--on-error", "skip"],
      /nq\.parquet: is also an input/,
    ],
    [
      "a bad --on-error",
      ["IN_PQ", "--out", "o.jsonl", "--on-error", "drop"],
      /--on-error \(L0_DATA_ON_ERROR\)/,
    ],
  ];
  for (const [what, args, error] of bad)
    it(`exits 2 with one line on ${what}`, () => {
      const r = l0(
        ...args.map((a) =>
          a
            .replace("IN_JSONL", jsonl)
            .replace("IN_PQ", pq)
            .replace(/^o\.jsonl$/, join(dir, "o.jsonl")),
        ),
      );
      expect(r.status, r.stderr).to.equal(2);
      const last = r.stderr.trim().split("\n").pop()!;
      expect(last)
        .to.match(/^l0 data: invalid configuration: /)
        .and.to.match(error);
    });

  it("is in the shell completion with its flags", () => {
    const r = spawnSync(process.execPath, [L0, "completion", "bash"], { encoding: "utf8" });
    expect(r.stdout).to.match(/data\) opts="--format --id-field --question-field --answer-field --out /);
  });
});
