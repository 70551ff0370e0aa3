// The default reward recipe (the CRD's defaults, the paper's): answering pays, turns do not. For
// every pair of turn counts the CRD allows (1..100), a right answer earns more than any episode
// without one, however well-formed and error-free its turns; with the same turns a wrong answer
// earns more than none; and a right answer earns the same whether it took one turn or many.
import { expect } from "chai";
import { l0 } from "../../lib/proto.js";
import { scoreTrajectory } from "../../images/trainer/hub/reward.js";
import { settings } from "./helpers.js";

const W = settings().weights;
const OK = l0.v1.ExecOutcome.EXEC_OUTCOME_OK;
const ERR = l0.v1.ExecOutcome.EXEC_OUTCOME_ERROR;
const NOT_RUN = l0.v1.ExecOutcome.EXEC_OUTCOME_NOT_RUN;
const TRUTH = ["Paris"];
const MAX_TURNS = 100; // the CRD's maximum for spec.agent.maxTurns

/** n turns, all well-formed and error-free ("best"), or all broken but a last one that raised ("worst"). */
function episode(n: number, turns: "best" | "worst", answer: string | null): l0.v1.ITrajectory {
  const good: l0.v1.ITurn = { formatOk: true, outcome: OK };
  const bad: l0.v1.ITurn = { formatOk: false, outcome: NOT_RUN };
  const list = Array.from({ length: n }, () => (turns === "best" ? good : bad));
  // An answer comes from a cell that ran, so the worst episode's last turn ran one (with an error after).
  if (turns === "worst") list[n - 1] = { formatOk: true, outcome: ERR };
  return { turns: list, hasFinalAnswer: answer !== null, finalAnswer: answer ?? "" };
}

const total = (t: l0.v1.ITrajectory): number => scoreTrajectory(t, TRUTH, W).total;
const range = Array.from({ length: MAX_TURNS }, (_, i) => i + 1);

describe("the default reward recipe", () => {
  it("is the paper's: 0.5 EM + 0.4 F1 + 0.1 has-answer, per-turn terms smaller than an answer", () => {
    expect(W).to.deep.equal({
      exactMatch: 0.5,
      f1: 0.4,
      hasAnswer: 0.1,
      format: 0.125,
      codeExecution: 0.125,
    });
  });

  const table: { name: string; a: (n: number) => l0.v1.ITrajectory; b: (n: number) => l0.v1.ITrajectory }[] =
    [
      {
        name: "a right answer (worst turns) beats no answer (best turns)",
        a: (n) => episode(n, "worst", "paris"),
        b: (n) => episode(n, "best", null),
      },
      {
        name: "a right answer (worst turns) beats a wrong one (best turns)",
        a: (n) => episode(n, "worst", "Paris."),
        b: (n) => episode(n, "best", "Lyon"),
      },
      {
        name: "a partly right answer (worst turns) beats no answer (best turns)",
        a: (n) => episode(n, "worst", "paris france"),
        b: (n) => episode(n, "best", null),
      },
    ];
  for (const c of table)
    it(`${c.name}, for every pair of turn counts 1..${MAX_TURNS}`, () => {
      for (const m of range)
        for (const n of range) {
          const [a, b] = [total(c.a(m)), total(c.b(n))];
          if (!(a > b)) expect.fail(`${m} turns earned ${a}, ${n} turns earned ${b}`);
        }
    });

  it("with the same turns, a wrong answer earns has-answer more than no answer", () => {
    for (const n of range)
      for (const turns of ["best", "worst"] as const)
        expect(total(episode(n, turns, "Lyon")) - total(episode(n, turns, null))).to.be.closeTo(
          W.hasAnswer,
          1e-9,
        );
  });

  it("pays turns at most format + codeExecution in all: many turns earn no more than one", () => {
    const one = total(episode(1, "best", "Paris"));
    expect(one).to.be.closeTo(1 + W.format + W.codeExecution, 1e-9);
    for (const n of range) expect(total(episode(n, "best", "Paris"))).to.be.closeTo(one, 1e-9);
    for (const n of range) expect(total(episode(n, "best", null))).to.be.closeTo(W.format, 1e-9);
  });
});
