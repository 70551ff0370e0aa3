// tiny-multihop's data and demonstrations (examples/tiny-multihop): the demos are the worker's own
// two-turn notebook, their programs answer every question through the real local search backend
// and a real Python, and a policy that does not read the first cell's output is wrong half the time.
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { join, resolve } from "node:path";
import { parseTurn } from "../../images/worker/agent/format.js";
import { systemPrompt } from "../../images/worker/agent/notebook.js";
import { LocalCorpus } from "../../images/worker/tools.js";
import { demoMessages, demoTurns, demosJsonl, townDoc } from "../../examples/tiny-multihop/demos.js";
import { generate, type Question, VERBS } from "../../examples/tiny-multihop/generate.js";

const EX = resolve(import.meta.dirname, "..", "..", "examples", "tiny-multihop");
const { train, evalSet, corpus } = generate();

const code = (turn: string): string => {
  const t = parseTurn(turn);
  if (!t.ok) throw new Error(t.error);
  return t.code;
};

/** Runs each question's two cells in one Python kernel-like namespace; returns the submitted answers. */
async function runPrograms(
  qs: readonly Question[],
  turns: (q: Question) => [string, string],
): Promise<string[]> {
  const search = LocalCorpus.fromFile(join(EX, "corpus.jsonl"));
  const cases = await Promise.all(
    qs.map(async (q) => {
      const town = townDoc(q, corpus).title;
      return { task: q.question, results: { [town]: await search.search(town) }, cells: turns(q).map(code) };
    }),
  );
  const py = `
import contextlib, io, json, sys
out = []
for c in json.load(sys.stdin):
    ns = {"task": c["task"], "search": lambda q, r=c["results"]: r[q]}
    ns["submit_final_answer"] = lambda a, ns=ns: ns.__setitem__("_answer", str(a))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for cell in c["cells"]:
                exec(cell, ns)
    except Exception as e:
        ns["_answer"] = "error: " + type(e).__name__
    out.append(ns.get("_answer"))
print(json.dumps(out))
`;
  return JSON.parse(
    execFileSync("/usr/bin/python3", ["-c", py], { input: JSON.stringify(cases), encoding: "utf8" }),
  );
}

const verbOf = (q: Question): (typeof VERBS)[number] => {
  const doc = townDoc(q, corpus);
  return VERBS.find((v) => doc.text.includes(` ${v} in `))!;
};

describe("tiny-multihop", () => {
  it("holds out towns: no eval town in a training question", () => {
    const town = (q: Question) => townDoc(q, corpus).title;
    const trainTowns = new Set(train.map(town));
    expect(evalSet.filter((q) => trainTowns.has(town(q)))).to.deep.equal([]);
    expect(new Set(evalSet.map(verbOf)).size).to.equal(2);
  });

  it("demos are the worker's two-turn notebook: system prompt, task, turn, observation, turn", () => {
    const q = train[0]!;
    const doc = townDoc(q, corpus);
    const m = demoMessages(q, doc, ["search"]);
    expect(m.map((x) => x.role)).to.deep.equal(["system", "user", "assistant", "user", "assistant"]);
    expect(m[0]!.content).to.equal(systemPrompt(["search"]));
    expect(m[1]!.content).to.equal(q.question);
    expect(m[3]!.content).to.equal(`Observation:\n   ${doc.text}`);
    expect(demosJsonl(train, corpus, ["search"], 7).trim().split("\n")).to.have.length(7);
  });

  it("the demonstrated programs answer every question through the real search backend", async () => {
    const qs = [...evalSet, ...train];
    const answers = await runPrograms(qs, (q) => demoTurns(q, verbOf(q)));
    expect(answers.filter((a, i) => a !== qs[i]!.answer)).to.deep.equal([]);
  });

  it("the program for the other wording fails: the second turn must read the first one's output", async () => {
    const other = (q: Question) => VERBS.find((v) => v !== verbOf(q))!;
    const answers = await runPrograms(evalSet, (q) => demoTurns(q, other(q)));
    expect(answers.filter((a, i) => a === evalSet[i]!.answer)).to.deep.equal([]);
  });
});
