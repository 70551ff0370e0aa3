// `l0 data`'s decisions as tables: input specs, output flags, the dedupe key, pass rates and the
// seeded split, and that what it writes is what the trainer's dataset reader takes.
import { expect } from "chai";
import { parseJsonl as parseTrainerJsonl } from "../../images/trainer/hub/dataset.js";
import {
  checkIds,
  type DataRecord,
  dedupe,
  filterByPassRate,
  outputsOf,
  parseInput,
  passRates,
  questionKey,
  split,
  trainerLine,
} from "../../eval/data/plan.js";

let n = 0;
const rec = (question: string, over: Partial<DataRecord> = {}): DataRecord => ({
  id: `q${++n}`,
  question,
  answers: ["a"],
  dataSource: "src",
  file: "f.jsonl",
  line: n,
  ...over,
});
const scored = (question: string, em: number, judgement?: string) => ({
  question,
  status: "scored",
  em,
  judge: judgement ? { judgement } : null,
});

describe("l0 data: decisions", () => {
  const inputs: [string, { dataSource: string; path: string } | RegExp][] = [
    ["hotpotqa=/d/dev.json", { dataSource: "hotpotqa", path: "/d/dev.json" }],
    ["/d/simple_qa.csv", { dataSource: "simple_qa", path: "/d/simple_qa.csv" }],
    ["nq/open=a=b.jsonl", { dataSource: "nq/open", path: "a=b.jsonl" }],
    ["x y=a.jsonl", /data_source may hold/],
    ["src=", /names no file after =/],
  ];
  for (const [arg, want] of inputs)
    it(`input ${JSON.stringify(arg)}`, () => {
      if (want instanceof RegExp) expect(() => parseInput(arg)).to.throw(want);
      else expect(parseInput(arg)).to.deep.equal(want);
    });

  const outs: [string, Parameters<typeof outputsOf>[0], unknown][] = [
    ["one file", { out: "o.jsonl" }, { kind: "one", out: "o.jsonl" }],
    [
      "a directory with --split",
      { out: "d", split: 0.9 },
      { kind: "split", train: "d/train.jsonl", eval: "d/eval.jsonl" },
    ],
    [
      "named files with --split",
      { trainOut: "t", evalOut: "e", split: 0.5 },
      { kind: "split", train: "t", eval: "e" },
    ],
    ["nothing", {}, /--out: is required/],
    ["a pair without --split", { trainOut: "t", evalOut: "e" }, /--split: is required/],
    ["--split 1", { out: "d", split: 1 }, /--split: must be between 0 and 1/],
    ["--out with a pair", { out: "d", trainOut: "t", evalOut: "e", split: 0.9 }, /--out: cannot be combined/],
    ["no --eval-out", { trainOut: "t", split: 0.9 }, /--eval-out: is required/],
  ];
  for (const [what, flags, want] of outs)
    it(`outputs: ${what}`, () => {
      if (want instanceof RegExp) expect(() => outputsOf(flags)).to.throw(want);
      else expect(outputsOf(flags)).to.deep.equal(want);
    });

  const keys: [string, string, boolean][] = [
    ["Who wrote Hamlet?", "who wrote  hamlet", true],
    ["Who wrote Hamlet？", "WHO WROTE HAMLET.", true],
    ["What is 538 + 19?", "What is 538 * 19?", false],
    ["Where is the U.S. capital?", "Where is the US capital?", false],
  ];
  for (const [a, b, same] of keys)
    it(`dedupe key: ${JSON.stringify(a)} ${same ? "=" : "≠"} ${JSON.stringify(b)}`, () =>
      expect(questionKey(a) === questionKey(b)).to.equal(same));

  it("dedupe keeps the first copy and names it in each dropped one", () => {
    const rs = [
      rec("Who wrote Hamlet?"),
      rec("What is 2+2?"),
      rec("who wrote hamlet", { file: "g.csv", line: 9 }),
    ];
    const d = dedupe(rs);
    expect(d.kept).to.deep.equal(rs.slice(0, 2));
    expect(d.dropped).to.deep.equal([{ record: rs[2], why: `duplicate of f.jsonl:${rs[0]!.line}` }]);
  });

  it("ids are unique per data_source; a clash names both records", () => {
    expect(() =>
      checkIds([rec("a", { id: "1" }), rec("b", { id: "1", dataSource: "other" })]),
    ).not.to.throw();
    expect(() =>
      checkIds([rec("a", { id: "1", line: 3 }), rec("b", { id: "1", file: "g.csv", line: 4 })]),
    ).to.throw(/g\.csv:4: id "src\/1" is also f\.jsonl:3/);
  });

  it("pass rates: judge verdicts win over EM, infrastructure failures and failed judges do not count", () => {
    const rates = passRates([
      scored("Q1?", 1),
      scored("q1", 0),
      scored("Q2", 0, "correct"),
      scored("Q2", 1, "incorrect"),
      scored("Q3", 1, "judge_failed"),
      { ...scored("Q3", 0), status: "failed" },
    ]);
    expect(Object.fromEntries(rates)).to.deep.equal({
      q1: { solved: 1, attempts: 2 },
      q2: { solved: 1, attempts: 2 },
      q3: { solved: 1, attempts: 1 },
    });
  });

  const filters: [string, number, number, string[]][] = [
    ["keeps everything with [0, 1]", 0, 1, ["never", "half", "always", "unrated"]],
    ["drops never-solved with min 0.01", 0.01, 1, ["half", "always", "unrated"]],
    ["drops always-solved with max 0.99", 0, 0.99, ["never", "half", "unrated"]],
    ["keeps only the middle", 0.01, 0.99, ["half", "unrated"]],
  ];
  for (const [what, min, max, kept] of filters)
    it(`pass-rate filter ${what}`, () => {
      const rs = ["never", "half", "always", "unrated"].map((q) => rec(q));
      const rates = passRates([
        scored("never", 0),
        scored("half", 1),
        scored("half", 0),
        scored("always", 1),
      ]);
      const f = filterByPassRate(rs, rates, min, max);
      expect(f.kept.map((r) => r.question)).to.deep.equal(kept);
      expect(f.unrated).to.equal(1);
      expect(f.kept.length + f.dropped.length).to.equal(rs.length);
      for (const d of f.dropped)
        expect(d.why).to.match(/pass rate \d\/\d (below|above) --(min|max)-pass-rate/);
    });

  it("split: round(n * fraction) to train, disjoint, complete, input order kept, same seed same split", () => {
    const rs = Array.from({ length: 101 }, (_, i) => rec(`q ${i}`));
    const a = split(rs, 0.9, 7);
    expect([a.train.length, a.eval.length]).to.deep.equal([91, 10]);
    expect([...a.train, ...a.eval].map((r) => r.id).sort()).to.deep.equal(rs.map((r) => r.id).sort());
    const pos = (r: DataRecord) => rs.indexOf(r);
    expect(a.train.map(pos)).to.deep.equal([...a.train.map(pos)].sort((x, y) => x - y));
    expect(split(rs, 0.9, 7)).to.deep.equal(a);
    expect(split(rs, 0.9, 8).eval).not.to.deep.equal(a.eval);
    expect(split([], 0.9, 1)).to.deep.equal({ train: [], eval: [] });
  });

  it("writes lines the trainer's dataset reader takes, tagged with data_source", () => {
    const r = rec("Who wrote Hamlet?", {
      id: "7",
      answers: ["Shakespeare", "William Shakespeare"],
      meta: { level: "easy" },
    });
    const line = trainerLine(r);
    expect(JSON.parse(line)).to.deep.equal({
      id: "src/7",
      question: "Who wrote Hamlet?",
      answer: ["Shakespeare", "William Shakespeare"],
      data_source: "src",
      meta: { level: "easy" },
    });
    const ds = parseTrainerJsonl(line + "\n", { questionField: "question", answerField: "answer" });
    expect(ds.errors).to.deep.equal([]);
    expect(ds.questions[0]).to.include({ prompt: "Who wrote Hamlet?" });
    expect(ds.questions[0]!.answers).to.deep.equal(["Shakespeare", "William Shakespeare"]);
  });
});
