// What a training step receives from the hub, and the pure conversion of it into the
// learner's TrainSample messages: one sample per turn, the turn's advantage on its tokens.
import { type l0 } from "../../../lib/proto.js";
import { type AnswerScore } from "./reward.js";

export interface BatchTrajectory {
  trajectory: l0.v1.ITrajectory;
  /** Per-turn rewards; the final-answer reward sits on the last turn. */
  turnRewards: number[];
  /** Sum of turnRewards. */
  reward: number;
  answer: AnswerScore;
  /** One advantage per turn (REINFORCE++ whitened returns, or GRPO's group-relative value on every turn). */
  advantages: number[];
}

export interface BatchGroup {
  groupId: string;
  /** Index of the question among the dataset's good lines. */
  questionIndex: number;
  /** The question as the agent saw it (for the readable trajectory log; the answers stay in the hub). */
  question?: string;
  trajectories: BatchTrajectory[];
}

export interface Batch {
  step: number;
  /** The policy version the step's episodes were leased with. */
  policyVersion: number;
  groups: BatchGroup[];
  /** True when fewer than batchSize groups came back because the over-sampling cap was reached. */
  short: boolean;
  rewardMean: number;
}

/** One TrainSample per turn that has response tokens; turns without tokens carry no gradient. */
export function toTrainSamples(batch: Batch): l0.v1.ITrainSample[] {
  const out: l0.v1.ITrainSample[] = [];
  for (const g of batch.groups) {
    for (const t of g.trajectories) {
      const turns = t.trajectory.turns ?? [];
      const id = t.trajectory.trajectoryId ?? "";
      turns.forEach((turn, i) => {
        const response = turn.responseTokenIds ?? [];
        if (response.length === 0) return;
        out.push({
          sampleId: `${id}/${i}`,
          trajectoryId: id,
          promptTokenIds: turn.promptTokenIds ?? [],
          responseTokenIds: response,
          samplerLogprobs: turn.responseLogprobs ?? [],
          responseMask: [],
          advantage: t.advantages[i] ?? 0,
        });
      });
    }
  }
  return out;
}
