// Trajectories a person can read: each step keeps a few of its batch's trajectories (the first of
// each group, groups spread evenly, at most `cap`) as JSON lines beside history.jsonl, with the
// question, every turn's response, code and output, the answer, rewards, advantages and policy
// version. Token ids are left out (they are in the learner's samples). `l0 trajectories` prints
// one as a transcript. Pure selection; the trainer appends.
import { l0 } from "../../../lib/proto.js";
import { type Batch } from "../hub/samples.js";

export const TRAJECTORIES_FILE = "trajectories.jsonl";

export interface TrajectoryLine {
  step: number;
  policyVersion: number;
  groupId: string;
  question: string;
  trajectoryId: string;
  end: string;
  endDetail: string;
  finalAnswer: string | null;
  reward: number;
  em: number;
  f1: number;
  turnRewards: number[];
  advantages: number[];
  turns: { response: string; code: string; observation: string; outcome: string; formatOk: boolean }[];
}

/** Up to `cap` trajectories of the batch: one per group, from groups spread over the batch. */
export function sampleTrajectories(batch: Batch, cap: number): TrajectoryLine[] {
  const groups = batch.groups.filter((g) => g.trajectories.length > 0);
  const n = Math.min(cap, groups.length);
  const out: TrajectoryLine[] = [];
  for (let i = 0; i < n; i++) {
    const g = groups[Math.floor((i * groups.length) / n)]!;
    const t = g.trajectories[0]!;
    const tr = t.trajectory;
    out.push({
      step: batch.step,
      policyVersion: Number(tr.policyVersion ?? batch.policyVersion),
      groupId: g.groupId,
      question: g.question ?? "",
      trajectoryId: tr.trajectoryId ?? "",
      end: l0.v1.EpisodeEnd[tr.end ?? 0] ?? String(tr.end),
      endDetail: tr.endDetail ?? "",
      finalAnswer: tr.hasFinalAnswer ? (tr.finalAnswer ?? "") : null,
      reward: t.reward,
      em: t.answer.exactMatch,
      f1: t.answer.f1,
      turnRewards: t.turnRewards,
      advantages: t.advantages,
      turns: (tr.turns ?? []).map((x) => ({
        response: x.responseText ?? "",
        code: x.code ?? "",
        observation: x.observation ?? "",
        outcome: l0.v1.ExecOutcome[x.outcome ?? 0] ?? String(x.outcome),
        formatOk: x.formatOk ?? false,
      })),
    });
  }
  return out;
}
