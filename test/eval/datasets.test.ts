// Dataset readers on small files in each format, broken records included: each is reported with
// its line (Parquet: row) number, fatal by default and skipped (and listed) with skipBad, never silently dropped.
import { expect } from "chai";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import {
  formatOf,
  parseCsv,
  parseHotpotQa,
  parseJsonl,
  parseParquet,
  parseSimpleQa,
  readDataset,
} from "../../eval/datasets.js";

async function expectReject(p: Promise<unknown>, error: RegExp): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e as Error,
  );
  expect(err, `expected a rejection matching ${error}`).to.be.instanceOf(Error);
  expect(err!.message).to.match(error);
}

const FIELDS = { idField: "id", questionField: "question", answerField: "answer" };

describe("eval datasets", () => {
  it("parses RFC 4180 CSV: quoted commas, doubled quotes, newlines inside quotes, CRLF", () => {
    const rows = parseCsv('a,b\r\n"x, y","say ""hi"""\n"two\nlines",z\n');
    expect(rows).to.deep.equal([
      { line: 1, cells: ["a", "b"] },
      { line: 2, cells: ["x, y", 'say "hi"'] },
      { line: 3, cells: ["two\nlines", "z"] },
    ]);
    expect(() => parseCsv('a,b\n"open,b\n')).to.throw(/line 2: a quoted field is never closed/);
  });

  it("reads SimpleQA's CSV (metadata, problem, answer) and names a broken row's line", () => {
    const text = [
      "metadata,problem,answer",
      `"{'topic': 'Art', 'urls': ['a', 'b']}",Who painted it?,Vermeer`,
      `"{'topic': 'X'}",,no problem`,
      `"{'topic': 'Y'}",Too,many,fields`,
      `"{'topic': 'Z'}",What year?,1694`,
    ].join("\n");
    expect(() => parseSimpleQa(text, false, "s.csv")).to.throw(/s\.csv:3: problem is empty/);
    const ds = parseSimpleQa(text, true, "s.csv");
    expect(ds.questions.map((q) => [q.id, q.question, q.answers])).to.deep.equal([
      ["line-2", "Who painted it?", ["Vermeer"]],
      ["line-5", "What year?", ["1694"]],
    ]);
    expect(ds.questions[0]!.meta).to.deep.equal({ metadata: "{'topic': 'Art', 'urls': ['a', 'b']}" });
    expect(ds.bad).to.deep.equal([
      { line: 3, error: "problem is empty" },
      { line: 4, error: "has 4 fields, the header 3" },
    ]);
    expect(() => parseSimpleQa("question,answer\nq,a\n", false, "s.csv")).to.throw(
      /s\.csv:1: .*problem and answer/,
    );
  });

  it("reads HotpotQA's JSON array and reports a broken item by its position", () => {
    const items = [
      { _id: "5a8b", question: "Which is older?", answer: "Velmir", type: "comparison", level: "hard" },
      { _id: "5a8c", question: "", answer: "x" },
      { _id: "5a8d", question: "Where?", answer: ["Paris", "Paris, France"], type: "bridge", level: "easy" },
    ];
    const text = JSON.stringify(items);
    expect(() => parseHotpotQa(text, false, "h.json")).to.throw(
      /h\.json:2: item 1: question must be a non-empty string/,
    );
    const ds = parseHotpotQa(text, true, "h.json");
    expect(ds.questions.map((q) => [q.id, q.answers, q.meta])).to.deep.equal([
      ["5a8b", ["Velmir"], { type: "comparison", level: "hard" }],
      ["5a8d", ["Paris", "Paris, France"], { type: "bridge", level: "easy" }],
    ]);
    expect(() => parseHotpotQa("{", false, "h.json")).to.throw(/h\.json: not valid JSON/);
    expect(() => parseHotpotQa("{}", false, "h.json")).to.throw(/JSON array/);
  });

  it("reads JSONL with configurable fields; a torn line is named by its number", () => {
    const text = [
      '{"qid":7,"q":"What is 2+2?","gold":["4","four"]}',
      "",
      '{"q":"x",',
      '{"q":"y","gold":[]}',
      '{"q":"z","gold":"z"}',
    ].join("\n");
    const fields = { idField: "qid", questionField: "q", answerField: "gold" };
    expect(() => parseJsonl(text, fields, false, "d.jsonl")).to.throw(/d\.jsonl:3: not valid JSON/);
    const ds = parseJsonl(text, fields, true, "d.jsonl");
    expect(ds.questions.map((q) => [q.id, q.answers])).to.deep.equal([
      ["7", ["4", "four"]],
      ["line-5", ["z"]],
    ]);
    expect(ds.bad.map((b) => b.line)).to.deep.equal([3, 4]);
    expect(ds.bad[1]!.error).to.match(/gold must be a non-empty string or list/);
  });

  it("reads Parquet with configurable columns: list answers, INT64 ids, a broken row named by its number", async () => {
    const bytes = parquetWriteBuffer({
      columnData: [
        { name: "qid", data: [7n, 8n, 9n, 10n], type: "INT64" },
        { name: "q", data: ["What is 2+2?", null, "Capital of France?", "Empty answers?"], type: "STRING" },
        { name: "gold", data: [["4", "four"], ["x"], ["Paris"], []] },
      ],
    });
    const fields = { idField: "qid", questionField: "q", answerField: "gold" };
    await expectReject(
      parseParquet(new Uint8Array(bytes), fields, false, "d.parquet"),
      /d\.parquet:2: row 2: q must be a non-empty string/,
    );
    const ds = await parseParquet(new Uint8Array(bytes), fields, true, "d.parquet");
    expect(ds.questions.map((q) => [q.id, q.question, q.answers])).to.deep.equal([
      ["7", "What is 2+2?", ["4", "four"]],
      ["9", "Capital of France?", ["Paris"]],
    ]);
    expect(ds.bad.map((b) => [b.line, b.error])).to.deep.equal([
      [2, "row 2: q must be a non-empty string"],
      [4, "row 4: gold must be a non-empty string or list of non-empty strings"],
    ]);
    await expectReject(
      parseParquet(new TextEncoder().encode("not parquet"), fields, false, "x.parquet"),
      /x\.parquet: not a readable Parquet file/,
    );
  });

  it("reads a Parquet file by its extension; rows without an id get row-N", async () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-eval-pq-"));
    const path = join(dir, "train.parquet");
    const bytes = parquetWriteBuffer({
      columnData: [
        { name: "question", data: ["Who wrote Hamlet?", "Boiling point of water in C?"], type: "STRING" },
        { name: "answer", data: ["Shakespeare", "100"], type: "STRING" },
      ],
    });
    writeFileSync(path, new Uint8Array(bytes));
    expect(formatOf(path)).to.equal("parquet");
    const ds = await readDataset(path, { ...FIELDS, skipBad: false, format: formatOf(path) });
    expect(ds.questions.map((q) => [q.id, q.answers])).to.deep.equal([
      ["row-1", ["Shakespeare"]],
      ["row-2", ["100"]],
    ]);
  });

  it("reads the shipped samples, and rejects duplicate ids", async () => {
    const opts = { ...FIELDS, skipBad: false };
    const s = await readDataset("examples/eval/simpleqa-sample.csv", { ...opts, format: formatOf("x.csv") });
    const h = await readDataset("examples/eval/hotpotqa-sample.json", {
      ...opts,
      format: formatOf("x.json"),
    });
    expect([s.questions.length, h.questions.length]).to.deep.equal([12, 12]);
    expect(s.questions[0]!.meta!.metadata).to.match(/'topic': 'Arithmetic'/);
    const dir = mkdtempSync(join(tmpdir(), "l0-eval-ds-"));
    const dup = join(dir, "dup.jsonl");
    writeFileSync(dup, '{"id":"a","question":"q","answer":"x"}\n{"id":"a","question":"r","answer":"y"}\n');
    await expectReject(readDataset(dup, { ...opts, format: "jsonl" }), /question id "a" appears twice/);
  });
});
