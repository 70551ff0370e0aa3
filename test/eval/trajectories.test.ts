// The readable trajectory log: a step keeps at most `cap` trajectories, one per group, spread over
// the batch, with the question, turns, rewards and advantages; `l0 trajectories` renders one.
import { expect } from "chai";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { l0 } from "../../lib/proto.js";
import { type Batch } from "../../images/trainer/hub/samples.js";
import { sampleTrajectories } from "../../images/trainer/trainer/trajectories.js";
import { pick, transcript } from "../../eval/transcript.js";

function batch(groups: number): Batch {
  return {
    step: 7,
    policyVersion: 6,
    short: false,
    rewardMean: 0,
    groups: Array.from({ length: groups }, (_, g) => ({
      groupId: `g${g}`,
      questionIndex: g,
      question: `What is ${g} + 1?`,
      trajectories: [0, 1].map((k) => ({
        trajectory: {
          trajectoryId: `t${g}-${k}`,
          policyVersion: 6,
          end: l0.v1.EpisodeEnd.EPISODE_END_ANSWERED,
          hasFinalAnswer: true,
          finalAnswer: String(g + 1),
          turns: [
            {
              responseText: "<think>add</think><code>x = 1 +",
              code: "x = 1 +",
              observation: "SyntaxError",
              outcome: l0.v1.ExecOutcome.EXEC_OUTCOME_ERROR,
              formatOk: true,
              responseTokenIds: [1, 2, 3],
            },
            {
              responseText: "<think>again</think><code>submit_final_answer(2)",
              code: "submit_final_answer(2)",
              observation: "",
              outcome: l0.v1.ExecOutcome.EXEC_OUTCOME_OK,
              formatOk: true,
            },
          ],
        },
        turnRewards: [0.0625, 1.0625],
        reward: 1.125,
        answer: { exactMatch: 1, f1: 1, hasAnswer: 1, reward: 1 },
        advantages: [0.5, 0.5],
      })),
    })),
  };
}

describe("trajectory log", () => {
  it("keeps at most cap trajectories, one per group, spread over the batch, without token ids", () => {
    const lines = sampleTrajectories(batch(8), 3);
    expect(lines.map((l) => l.trajectoryId)).to.deep.equal(["t0-0", "t2-0", "t5-0"]);
    expect(sampleTrajectories(batch(2), 4).map((l) => l.groupId)).to.deep.equal(["g0", "g1"]);
    expect(sampleTrajectories(batch(2), 0)).to.deep.equal([]);
    expect(lines[0]).to.deep.include({
      step: 7,
      policyVersion: 6,
      question: "What is 0 + 1?",
      end: "EPISODE_END_ANSWERED",
    });
    expect(lines[0]!.turns[0]).to.deep.equal({
      response: "<think>add</think><code>x = 1 +",
      code: "x = 1 +",
      observation: "SyntaxError",
      outcome: "EXEC_OUTCOME_ERROR",
      formatOk: true,
    });
    expect(JSON.stringify(lines)).to.not.include("responseTokenIds");
  });

  it("prints one as a transcript: turns with their outputs, rewards and advantages", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-traj-"));
    const file = join(dir, "trajectories.jsonl");
    writeFileSync(
      file,
      sampleTrajectories(batch(4), 4)
        .map((l) => JSON.stringify(l) + "\n")
        .join(""),
    );
    const text = transcript(pick(file, { step: 7, index: 1 }));
    expect(text).to.include("step 7, policy version 6 | trajectory t1-0");
    expect(text).to.include("Question: What is 1 + 1?");
    expect(text).to.match(/--- turn 1 \(format ok, error, reward 0\.063, advantage 0\.500\)/);
    expect(text).to.include("    SyntaxError");
    expect(text).to.include("Final answer: 2");
    expect(transcript(pick(file, { index: -1, id: "t3-0" }))).to.include("trajectory t3-0");
    expect(() => pick(file, { step: 9, index: 0 })).to.throw(
      /no trajectory at index 0 of step 9 \(0 there\)/,
    );
  });
});
