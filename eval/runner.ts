// Runs NB-Agent episodes over evaluation questions with the worker's own episode code, sandbox
// and tools, at most `concurrency` at a time; scores each with the training reward's EM/F1 and
// reward, and with the judge when there is one. An episode that ends for infrastructure reasons
// (engine, sandbox) is run again up to `episodeAttempts` times, then recorded as failed.
import { l0 } from "../lib/proto.js";
import { type EpisodeDeps, runEpisode } from "../images/worker/agent/episode.js";
import { type RewardWeights, scoreTrajectory } from "../images/trainer/hub/reward.js";
import { type EvalQuestion } from "./datasets.js";
import { type Judge } from "../images/trainer/hub/judge.js";
import { type QuestionResult, type TurnRecord } from "./results.js";

const End = l0.v1.EpisodeEnd;
const INFRA = new Set<l0.v1.EpisodeEnd>([
  End.EPISODE_END_ENGINE_FAILURE,
  End.EPISODE_END_SANDBOX_FAILURE,
  End.EPISODE_END_WORKER_SHUTDOWN,
]);

export interface RunnerOptions {
  agent: l0.v1.IAgentSettings;
  weights: RewardWeights;
  concurrency: number;
  episodeAttempts: number;
  judge: Judge | null;
  signal: AbortSignal;
  /** Called once per finished question (scored or failed), in finishing order. */
  onResult: (r: QuestionResult) => void;
}

/** Runs every question; resolves when all are done or the signal aborts (unfinished ones are not recorded). */
export async function runEval(
  questions: readonly EvalQuestion[],
  deps: EpisodeDeps,
  o: RunnerOptions,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < questions.length && !o.signal.aborted) {
      const q = questions[next++]!;
      const r = await evalQuestion(q, deps, o);
      if (r && !o.signal.aborted) o.onResult(r);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, questions.length) }, lane));
}

async function evalQuestion(
  q: EvalQuestion,
  deps: EpisodeDeps,
  o: RunnerOptions,
): Promise<QuestionResult | null> {
  const t0 = Date.now();
  let t: l0.v1.ITrajectory = {};
  let attempt = 0;
  do {
    attempt++;
    const task: l0.v1.ITask = {
      taskId: `eval-${q.id}`,
      leaseId: `eval-${q.id}-${attempt}`,
      groupId: `eval-${q.id}`,
      prompt: q.question,
      agent: o.agent,
      attempt,
      eval: true,
    };
    t = await runEpisode(task, deps, { signal: o.signal });
    if (o.signal.aborted) return null;
  } while (INFRA.has(t.end ?? End.EPISODE_END_UNSPECIFIED) && attempt < o.episodeAttempts);
  const failed = INFRA.has(t.end ?? End.EPISODE_END_UNSPECIFIED);
  const answer = t.hasFinalAnswer ? (t.finalAnswer ?? "") : null;
  const score = scoreTrajectory(t, q.answers, o.weights);
  const judge = failed || !o.judge ? null : await o.judge.grade(q.question, q.answers[0]!, answer);
  return {
    id: q.id,
    question: q.question,
    answers: q.answers,
    status: failed ? "failed" : "scored",
    end: End[t.end ?? 0] ?? String(t.end),
    endDetail: t.endDetail ?? "",
    finalAnswer: answer,
    em: score.answer.exactMatch,
    f1: score.answer.f1,
    reward: score.total,
    judge,
    episodeAttempts: attempt,
    durationSeconds: (Date.now() - t0) / 1000,
    turns: (t.turns ?? []).map(turnRecord),
  };
}

function turnRecord(t: l0.v1.ITurn): TurnRecord {
  return {
    response: t.responseText ?? "",
    code: t.code ?? "",
    observation: t.observation ?? "",
    outcome: l0.v1.ExecOutcome[t.outcome ?? 0] ?? String(t.outcome),
    formatOk: t.formatOk ?? false,
  };
}
