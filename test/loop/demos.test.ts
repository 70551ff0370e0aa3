// The warm-start demonstrations: rendered with the worker's own notebook (same system prompt and
// turn format the worker parses), and their cells compute the right answer from the kernel's `task`.
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseTurn } from "../../images/worker/agent/format.js";
import { systemPrompt } from "../../images/worker/agent/notebook.js";
import { demoMessages, demoResponse, demosJsonl } from "../../examples/tiny-qa/demos.js";
import { readJsonl, toJsonl } from "../../examples/jsonl.js";

const QS = [
  { question: "What is 785 * 17?", answer: "13345" },
  { question: "What is 12 + 999?", answer: "1011" },
  { question: "In which year was Velmir founded?", answer: "1694" },
];

describe("tiny-qa demonstrations", () => {
  it("are the worker's notebook: its system prompt, the task, one well-formed turn", () => {
    for (const q of QS) {
      const m = demoMessages(q, ["search"])!;
      expect(m.map((x) => x.role)).to.deep.equal(["system", "user", "assistant"]);
      expect(m[0]!.content).to.equal(systemPrompt(["search"]));
      expect(m[1]!.content).to.equal(q.question);
      expect(parseTurn(m[2]!.content).ok).to.equal(true);
    }
    expect(demoResponse({ question: "Who?", answer: "x" })).to.equal(null);
    expect(
      demosJsonl([...QS, { question: "Who?", answer: "x" }], ["search"], 10)
        .trim()
        .split("\n"),
    ).to.have.length(3);
  });

  it("compute the answer of an arithmetic question from `task` in Python", () => {
    for (const q of QS.slice(0, 2)) {
      const code = parseTurn(demoResponse(q)!);
      if (!code.ok) throw new Error(code.error);
      const py = `task = ${JSON.stringify(q.question)}\nsubmit_final_answer = print\n${code.code}\n`;
      expect(execFileSync("/usr/bin/python3", ["-c", py], { encoding: "utf8" }).trim()).to.equal(q.answer);
    }
  });
});

describe("example JSONL files", () => {
  it("round-trip through toJsonl/readJsonl, and a broken line is named by file and line", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-jsonl-"));
    try {
      const file = join(dir, "rows.jsonl");
      writeFileSync(file, toJsonl([{ a: 1 }, { b: "x" }]) + "\n");
      expect(readJsonl(file)).to.deep.equal([{ a: 1 }, { b: "x" }]);
      writeFileSync(file, '{"a":1}\n\n{"b":\n');
      expect(() => readJsonl(file)).to.throw(`${file}:3: not JSON`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
