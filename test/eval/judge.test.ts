// The SimpleQA-style judge against a real HTTP server on port 0: grades parsed from its replies,
// failures retried, and a judge that keeps failing counted as judge_failed, never as incorrect;
// the summary's accuracy, accuracy given attempted and F-score by hand.
import { expect } from "chai";
import { Judge, parseGrade } from "../../images/trainer/hub/judge.js";
import { judgeServer } from "./fixtures/judge.js";
import { type QuestionResult, summarize, summaryTable } from "../../eval/results.js";
import { judgeSettings } from "../../eval/main.js";
import { resolvedRun } from "../fixtures/runs.js";

const judge = (url: string): Judge =>
  new Judge({
    baseUrl: url,
    model: "judge",
    attempts: 3,
    timeoutMs: 5000,
    backoffMs: 1,
    sleep: () => Promise.resolve(),
  });

function result(id: string, judgement: string | null, over: Partial<QuestionResult> = {}): QuestionResult {
  return {
    id,
    question: "q",
    answers: ["a"],
    status: "scored",
    end: "EPISODE_END_ANSWERED",
    endDetail: "",
    finalAnswer: "a",
    em: 0,
    f1: 0,
    reward: 0,
    judge: judgement ? { judgement: judgement as never, attempts: 1, detail: "" } : null,
    episodeAttempts: 1,
    durationSeconds: 1,
    turns: [],
    ...over,
  };
}

describe("eval judge", () => {
  const cases: [string, string | null][] = [
    ["A", "correct"],
    [" B.", "incorrect"],
    ["C", "not_attempted"],
    ["Grade: A", "correct"],
    ["NOT_ATTEMPTED", "not_attempted"],
    ["incorrect", "incorrect"],
    ["I cannot tell", null],
  ];
  for (const [reply, want] of cases)
    it(`reads ${JSON.stringify(reply)} as ${want}`, () => expect(parseGrade(reply)).to.equal(want));

  it("sends the question, reference and answer; retries errors and replies without a grade", async () => {
    const s = await judgeServer([503, "hmm", "A"]);
    try {
      const r = await judge(s.url).grade("Who painted it?", "Vermeer", "Johannes Vermeer");
      expect(r).to.include({ judgement: "correct", attempts: 3 });
      const last = s.bodies[2] as { model: string; messages: { content: string }[] };
      expect(last.model).to.equal("judge");
      expect(last.messages[1]!.content)
        .to.include("Question: Who painted it?")
        .and.include("Reference answer: Vermeer")
        .and.include("Answer to grade: Johannes Vermeer");
    } finally {
      await s.close();
    }
  });

  it("counts a judge that keeps failing as judge_failed, and grades no answer not attempted without asking", async () => {
    const s = await judgeServer([500, 500, 500]);
    try {
      const r = await judge(s.url).grade("q", "a", "b");
      expect(r.judgement).to.equal("judge_failed");
      expect(r.detail).to.match(/judge answered 500/);
      expect(await judge(s.url).grade("q", "a", null)).to.include({
        judgement: "not_attempted",
        attempts: 0,
      });
      expect(s.bodies).to.have.length(3);
    } finally {
      await s.close();
    }
  });

  it("summarizes SimpleQA's way: judge failures and infrastructure failures in no ratio", () => {
    const rs = [
      result("1", "correct", { em: 1, f1: 1 }),
      result("2", "correct", { f1: 0.5 }),
      result("3", "incorrect"),
      result("4", "not_attempted", { finalAnswer: null }),
      result("5", "judge_failed"),
      result("6", null, { status: "failed", em: 1 }),
    ];
    const s = summarize(rs, true);
    expect(s).to.deep.include({ questions: 6, scored: 5, failed: 1, answered: 4 });
    expect(s.em).to.be.closeTo(1 / 5, 1e-9);
    expect(s.f1).to.be.closeTo(1.5 / 5, 1e-9);
    expect(s.judge).to.deep.include({ correct: 2, incorrect: 1, notAttempted: 1, failed: 1 });
    expect(s.judge!.accuracy).to.be.closeTo(2 / 4, 1e-9);
    expect(s.judge!.accuracyGivenAttempted).to.be.closeTo(2 / 3, 1e-9);
    expect(s.judge!.fScore).to.be.closeTo((2 * 0.5 * (2 / 3)) / (0.5 + 2 / 3), 1e-9);
    expect(summaryTable(s)).to.match(/accuracy given attempted\s+66\.7%/);
    expect(summarize(rs, false).judge).to.equal(null);
  });

  it("takes the judge from the flags, else from the run's spec.evaluation.judge, else none", () => {
    const flags = { judgeUrl: undefined, judgeModel: "", judgeAttempts: 3, judgeTimeout: 60_000 };
    const plain = resolvedRun({ dataset: { path: "/t.jsonl", evalPath: "/e.jsonl" } });
    const judged = resolvedRun({
      dataset: { path: "/t.jsonl", evalPath: "/e.jsonl" },
      evaluation: { judge: { url: "https://j", model: "grader", attempts: 5, secretRef: { name: "k" } } },
    });
    expect(judgeSettings(flags, plain)).to.equal(null);
    expect(judgeSettings(flags, judged)).to.deep.include({
      baseUrl: "https://j",
      model: "grader",
      attempts: 5,
      timeoutMs: 60_000,
      keyed: true,
    });
    expect(judgeSettings({ ...flags, judgeUrl: "http://mine", judgeModel: "m" }, judged)).to.deep.include({
      baseUrl: "http://mine",
      model: "m",
      attempts: 3,
      keyed: false,
    });
  });
});
