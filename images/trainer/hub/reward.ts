// Verifiable rewards, computed by the hub from ground truth it alone holds: the final answer's
// exact match, token F1 and has-answer on normalized text (best over acceptable answers), and
// per-turn format and code-execution rewards averaged over the episode's turns. Pure functions,
// table-tested in test/hub; `l0 eval` scores with the same ones (docs/eval.md).
import { l0 } from "../../../lib/proto.js";

/**
 * Weights from the TrainingRun's `spec.reward`. The CRD's defaults are the paper's recipe
 * (cmriat/l0 `nb_agent_reward.py`: 0.8 * (0.5 EM + 0.4 F1 + 0.1 has-answer) + 0.1 * format +
 * 0.1 * execution, the per-turn terms divided by the number of turns), scaled by 1/0.8.
 */
export interface RewardWeights {
  exactMatch: number;
  f1: number;
  hasAnswer: number;
  format: number;
  codeExecution: number;
}

const ARTICLES = /\b(a|an|the)\b/g;
// Unicode punctuation and symbols, so "U.S.A." and "U.S.A" and "“Paris”" compare equal to their bare forms.
const PUNCT = /[\p{P}\p{S}]/gu;

/** SQuAD-style normalization: lower case, no punctuation, no articles, single spaces. */
export function normalizeAnswer(text: string): string {
  return text.toLowerCase().replace(PUNCT, "").replace(ARTICLES, " ").replace(/\s+/g, " ").trim();
}

function tokens(text: string): string[] {
  const n = normalizeAnswer(text);
  return n === "" ? [] : n.split(" ");
}

/** 1 when the normalized strings are equal. */
export function exactMatch(prediction: string, truth: string): number {
  return normalizeAnswer(prediction) === normalizeAnswer(truth) ? 1 : 0;
}

/** Token-level F1 of the normalized strings (bag of tokens, SQuAD's definition). */
export function f1Score(prediction: string, truth: string): number {
  const p = tokens(prediction);
  const t = tokens(truth);
  if (p.length === 0 || t.length === 0) return p.length === t.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const w of t) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of p) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      common++;
      counts.set(w, c - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / p.length;
  const recall = common / t.length;
  return (2 * precision * recall) / (precision + recall);
}

export interface AnswerScore {
  exactMatch: number;
  f1: number;
  hasAnswer: number;
  /** exactMatch*w_em + f1*w_f1 + hasAnswer*w_has. */
  reward: number;
}

/**
 * Scores a final answer against every acceptable answer and keeps the best of each measure.
 * No answer (or an empty one) scores 0 everywhere: the agent did not answer.
 */
export function scoreAnswer(
  finalAnswer: string | null,
  answers: readonly string[],
  w: RewardWeights,
): AnswerScore {
  const has = finalAnswer !== null && finalAnswer.trim() !== "" ? 1 : 0;
  if (finalAnswer === null || has === 0 || answers.length === 0) {
    return { exactMatch: 0, f1: 0, hasAnswer: has, reward: has * w.hasAnswer };
  }
  let em = 0;
  let f1 = 0;
  for (const a of answers) {
    em = Math.max(em, exactMatch(finalAnswer, a));
    f1 = Math.max(f1, f1Score(finalAnswer, a));
  }
  return { exactMatch: em, f1, hasAnswer: 1, reward: em * w.exactMatch + f1 * w.f1 + w.hasAnswer };
}

/**
 * Per-turn reward: format*[one well-formed think + code block] + codeExecution*[the cell ran
 * without error]*verified. "Ran without error" is partly the cell's own word (an in-process REPL
 * cannot stop code from catching its own exceptions or rewriting the loop that reports them;
 * images/worker/README.md), so it is weighted by what the hub can verify: `verified` is the
 * final answer's F1 against the ground truth. Hiding errors then pays only in episodes whose
 * answer is right, where an honest cell that caught its own errors earns the same.
 */
export function turnReward(turn: l0.v1.ITurn, w: RewardWeights, verified = 1): number {
  const format = turn.formatOk ? w.format : 0;
  const exec = turn.outcome === l0.v1.ExecOutcome.EXEC_OUTCOME_OK ? w.codeExecution * verified : 0;
  return format + exec;
}

export interface TrajectoryScore {
  answer: AnswerScore;
  /**
   * One reward per turn: the turn's format and execution terms divided by the number of turns
   * (the reference's scaling: however many turns an episode takes, they add up to at most
   * format + codeExecution * F1, so turns never pay more than the answer); the final-answer
   * reward sits on the last turn.
   */
  turnRewards: number[];
  /** Sum of the turn rewards (the answer reward alone when there are no turns). */
  total: number;
}

export function scoreTrajectory(
  t: l0.v1.ITrajectory,
  answers: readonly string[],
  w: RewardWeights,
): TrajectoryScore {
  const answer = scoreAnswer(t.hasFinalAnswer ? (t.finalAnswer ?? "") : null, answers, w);
  const turns = t.turns ?? [];
  const turnRewards = turns.map((turn) => turnReward(turn, w, answer.f1) / turns.length);
  if (turnRewards.length > 0) turnRewards[turnRewards.length - 1]! += answer.reward;
  const total = turnRewards.length > 0 ? turnRewards.reduce((a, b) => a + b, 0) : answer.reward;
  return { answer, turnRewards, total };
}
