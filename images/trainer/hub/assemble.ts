// Turning finished groups into what the training loop receives: a Batch with per-turn
// advantages, or an evaluation summary (scores.ts, the one `l0 eval` reports). Pure: reads the
// groups' scored results and changes nothing (the book drops them when the caller marks the
// groups served).
import { type AdvantageOptions, advantages } from "./advantage.js";
import { type GroupRec, type TaskRec } from "./book.js";
import { type Judgement } from "./judge.js";
import { type Batch } from "./samples.js";
import { type ScoredAnswer, type Summary, summarize } from "./scores.js";

/** A held-out evaluation: `l0 eval`'s summary (scores.ts) over its questions, one episode each. */
export interface EvalResult extends Summary {
  policyVersion: number;
  /** Mean exact match of the scored answers (= em; the held-out accuracy in Stats). */
  accuracy: number;
  /** Groups dropped for infrastructure failures (= failed; in no mean). */
  dropped: number;
}

/** Builds the batch of complete groups from their scored results. */
export function assembleBatch(
  groups: readonly GroupRec[],
  meta: { step: number; policyVersion: number; short: boolean },
  opts: AdvantageOptions,
): Batch {
  const rewarded = groups.map((g) =>
    g.tasks.map((t) => ({ turnRewards: t.result!.score.turnRewards, total: t.result!.score.total })),
  );
  const adv = advantages(rewarded, opts);
  let sum = 0;
  let n = 0;
  const out = groups.map((g, gi) => ({
    groupId: g.id,
    questionIndex: g.question.index,
    question: g.question.prompt,
    trajectories: g.tasks.map((t, ti) => {
      const r = t.result!;
      sum += r.score.total;
      n++;
      return {
        trajectory: r.trajectory,
        turnRewards: r.score.turnRewards,
        reward: r.score.total,
        answer: r.score.answer,
        advantages: adv[gi]![ti]!,
      };
    }),
  }));
  return { ...meta, groups: out, rewardMean: n > 0 ? sum / n : 0 };
}

/** An evaluation's groups as the summary reads them: a dropped group is a failed question. */
export function evalAnswers(
  groups: Iterable<GroupRec>,
  grades: ReadonlyMap<TaskRec, { judgement: Judgement }>,
): ScoredAnswer[] {
  const out: ScoredAnswer[] = [];
  for (const g of groups) {
    if (g.status === "dropped") {
      out.push({ status: "failed", finalAnswer: null, em: 0, f1: 0, reward: 0, turns: [], judge: null });
      continue;
    }
    for (const t of g.tasks) {
      const { trajectory, score } = t.result!;
      out.push({
        status: "scored",
        finalAnswer: trajectory.hasFinalAnswer ? (trajectory.finalAnswer ?? "") : null,
        em: score.answer.exactMatch,
        f1: score.answer.f1,
        reward: score.total,
        turns: trajectory.turns ?? [],
        judge: grades.get(t) ?? null,
      });
    }
  }
  return out;
}

/** The evaluation's result; `judged`: a judge was configured (grades holds its judgements). */
export function summarizeEval(
  groups: Iterable<GroupRec>,
  policyVersion: number,
  grades: ReadonlyMap<TaskRec, { judgement: Judgement }>,
  judged: boolean,
): EvalResult {
  const s = summarize(evalAnswers(groups, grades), judged);
  return { policyVersion, accuracy: s.em, dropped: s.failed, ...s };
}
