// Verifiable rewards against hand-computed cases: normalization, EM, F1, has-answer, and the
// per-turn format and code-execution terms with the answer reward on the last turn.
import { expect } from "chai";
import { l0 } from "../../lib/proto.js";
import {
  exactMatch,
  f1Score,
  normalizeAnswer,
  scoreAnswer,
  scoreTrajectory,
} from "../../images/trainer/hub/reward.js";
import { settings } from "./helpers.js";

/** The CRD's default weights, as a run that leaves spec.reward out gets them. */
const W = settings().weights;
const OK = l0.v1.ExecOutcome.EXEC_OUTCOME_OK;
const ERR = l0.v1.ExecOutcome.EXEC_OUTCOME_ERROR;

describe("hub rewards", () => {
  const normalizeCases: [string, string][] = [
    ["The Eiffel Tower", "eiffel tower"],
    ["  U.S.A.  ", "usa"],
    ["an apple, a pear", "apple pear"],
    ["“Paris”!", "paris"],
    ["theory", "theory"], // articles only as whole words
    ["", ""],
  ];
  for (const [input, want] of normalizeCases)
    it(`normalizes ${JSON.stringify(input)} to ${JSON.stringify(want)}`, () =>
      expect(normalizeAnswer(input)).to.equal(want));

  const f1Cases: [string, string, number][] = [
    ["Paris", "paris", 1],
    ["the city of Paris", "Paris", 0.5], // tokens city, of, paris: p = 1/3, r = 1
    ["new york city", "york new", 0.8], // p = 2/3, r = 1 -> 0.8
    ["london", "paris", 0],
    ["a", "the", 1], // both normalize to nothing
  ];
  for (const [p, t, want] of f1Cases)
    it(`F1(${JSON.stringify(p)}, ${JSON.stringify(t)}) = ${want}`, () =>
      expect(f1Score(p, t)).to.be.closeTo(want, 1e-9));

  it("exact match compares normalized text", () => {
    expect(exactMatch("The Beatles.", "beatles")).to.equal(1);
    expect(exactMatch("Beatles band", "beatles")).to.equal(0);
  });

  const answerCases: {
    name: string;
    answer: string | null;
    truths: string[];
    w: Partial<typeof W>;
    want: number;
  }[] = [
    {
      name: "default weights: the paper's 0.5 EM + 0.4 F1 + 0.1 has-answer",
      answer: "new york",
      truths: ["New York City"],
      w: {},
      want: 0.4 * 0.8 + 0.1,
    },
    { name: "best over acceptable answers", answer: "NYC", truths: ["New York City", "nyc"], w: {}, want: 1 },
    {
      name: "EM + F1 + has-answer weights",
      answer: "new york",
      truths: ["New York City"],
      w: { exactMatch: 1, f1: 0.5, hasAnswer: 0.2 },
      want: 0 + 0.4 + 0.2,
    },
    { name: "no answer scores 0", answer: null, truths: ["x"], w: { hasAnswer: 0.2 }, want: 0 },
    { name: "blank answer is no answer", answer: "   ", truths: ["x"], w: { hasAnswer: 0.2 }, want: 0 },
    {
      name: "wrong answer still earns has-answer",
      answer: "y",
      truths: ["x"],
      w: { hasAnswer: 0.2 },
      want: 0.2,
    },
  ];
  for (const c of answerCases)
    it(`answer score: ${c.name}`, () =>
      expect(scoreAnswer(c.answer, c.truths, { ...W, ...c.w }).reward).to.be.closeTo(c.want, 1e-9));

  it("puts per-turn format/exec rewards, over the number of turns, on each turn and the answer reward on the last", () => {
    const t: l0.v1.ITrajectory = {
      turns: [
        { formatOk: true, outcome: OK },
        { formatOk: true, outcome: ERR },
        { formatOk: false, outcome: l0.v1.ExecOutcome.EXEC_OUTCOME_NOT_RUN },
        { formatOk: true, outcome: OK },
      ],
      hasFinalAnswer: true,
      finalAnswer: "Paris",
    };
    const s = scoreTrajectory(t, ["paris"], W);
    // Defaults: format 0.125 and execution 0.125 per turn, divided by the 4 turns.
    expect(s.turnRewards.map((x) => Number(x.toFixed(9)))).to.deep.equal([0.0625, 0.03125, 0, 1.0625]);
    expect(s.total).to.be.closeTo(1.15625, 1e-9);
    expect(s.answer).to.deep.include({ exactMatch: 1, f1: 1, hasAnswer: 1 });
  });

  it("pays the execution reward in proportion to the verified answer (the cell's own word is not enough)", () => {
    const t = (answer: string): l0.v1.ITrajectory => ({
      turns: [
        { formatOk: true, outcome: OK },
        { formatOk: true, outcome: OK },
      ],
      hasFinalAnswer: true,
      finalAnswer: answer,
    });
    // Wrong answer: format rewards (and has-answer on the last turn) only, however many cells said they ran fine.
    expect(scoreTrajectory(t("Lyon"), ["paris"], W).turnRewards).to.deep.equal([0.0625, 0.0625 + 0.1]);
    // Partly right (F1 2/3): two thirds of the execution reward.
    const half = scoreTrajectory(t("paris france"), ["paris"], W).turnRewards.slice(0, 1);
    expect(half[0]).to.be.closeTo((0.125 + 0.125 * (2 / 3)) / 2, 1e-9);
  });

  it("scores a trajectory without turns by its answer alone", () => {
    const s = scoreTrajectory({ turns: [], hasFinalAnswer: false }, ["x"], W);
    expect(s).to.deep.include({ turnRewards: [], total: 0 });
  });
});
