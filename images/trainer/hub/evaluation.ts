// One held-out evaluation at a time: every question as a group of one episode (never trained
// on), each answer graded by the judge (when the run has one) as its episode finishes, the
// result once the last group and grade are in, and the last evaluation's figures for Stats and
// checkpoints. The hub decides when an evaluation may start; this keeps its bookkeeping.
import { L0Error } from "../../../lib/errors.js";
import { type Logger } from "../../../lib/log.js";
import { type EvalResult, summarizeEval } from "./assemble.js";
import { type GroupRec, type TaskBook, type TaskRec } from "./book.js";
import { type Question } from "./dataset.js";
import { type Judge, type JudgeResult } from "./judge.js";

/** The last finished evaluation's headline figures (Stats, the run's status, checkpoints). */
export interface LastEvaluation {
  /** Training steps served when it started (0: before the first step). */
  step: number;
  /** Mean exact match (EvalResult.accuracy). */
  accuracy: number;
  /** The judge's figures; null when the run has no judge. */
  judge: { accuracy: number; accuracyGivenAttempted: number; fScore: number } | null;
}

/** The headline figures of an evaluation that started at `step`. */
export function lastEvaluation(step: number, r: EvalResult): LastEvaluation {
  const j = r.judge;
  return {
    step,
    accuracy: r.accuracy,
    judge: j && { accuracy: j.accuracy, accuracyGivenAttempted: j.accuracyGivenAttempted, fScore: j.fScore },
  };
}

/** The run's judge (spec.evaluation.judge) and how many of its requests may be in flight. */
export interface EvalJudge {
  judge: Judge;
  maxConcurrent: number;
}

interface EvalRun {
  groups: Set<GroupRec>;
  remaining: number;
  step: number;
  version: number;
  grades: Map<TaskRec, Promise<JudgeResult>>;
  /** Aborted with the evaluation: stops the judge's requests and retries. */
  stop: AbortController;
  resolve: (r: EvalResult) => void;
}

export class Evaluations {
  #run: EvalRun | null = null;
  /** Judge requests waiting for a free slot (at most maxConcurrent run). */
  readonly #waiting: (() => void)[] = [];
  #inFlight = 0;
  /** The last finished evaluation (kept across restarts through the checkpoint). */
  last: LastEvaluation | null = null;

  constructor(
    private readonly book: TaskBook,
    private readonly log: Logger,
    private readonly judge: EvalJudge | null = null,
  ) {}

  get running(): boolean {
    return this.#run !== null;
  }

  /** Issues one eval group per question, leased with `version` at `step`; resolves with the summary. */
  start(
    questions: Question[],
    at: { step: number; version: number },
    signal?: AbortSignal,
  ): Promise<EvalResult> {
    if (this.#run)
      return Promise.reject(new L0Error("FailedPrecondition", "an evaluation is already running"));
    return new Promise<EvalResult>((resolve, reject) => {
      const run: EvalRun = {
        groups: new Set(),
        remaining: questions.length,
        step: at.step,
        version: at.version,
        grades: new Map(),
        stop: new AbortController(),
        resolve,
      };
      this.#run = run;
      signal?.addEventListener(
        "abort",
        () => {
          for (const g of run.groups) this.book.dropGroup(g, "aborted", "evaluation aborted");
          this.#run = null;
          run.stop.abort();
          reject(new L0Error("Unavailable", "evaluation aborted"));
        },
        { once: true },
      );
      for (const q of questions) run.groups.add(this.book.addGroup(q, 1, true));
      if (questions.length === 0) void this.#finish(run);
    });
  }

  /** The book finished an eval group (answered or dropped). */
  groupFinished(g: GroupRec): void {
    const run = this.#run;
    if (!run || !run.groups.has(g)) return;
    if (this.judge && g.status !== "dropped")
      for (const t of g.tasks) run.grades.set(t, this.#grade(t, this.judge.judge, run.stop.signal));
    if (--run.remaining === 0) void this.#finish(run);
  }

  async #grade(t: TaskRec, judge: Judge, signal: AbortSignal): Promise<JudgeResult> {
    const { trajectory } = t.result!;
    const answer = trajectory.hasFinalAnswer ? (trajectory.finalAnswer ?? "") : null;
    await this.#slot();
    try {
      const r = await judge.grade(t.group.question.prompt, t.group.question.answers[0]!, answer, signal);
      if (r.judgement === "judge_failed" && !signal.aborted)
        this.log.warn("the judge could not grade an answer; counted as judge_failed, not incorrect", {
          question: t.group.question.index,
          attempts: r.attempts,
          detail: r.detail,
        });
      return r;
    } finally {
      // The slot passes straight to a waiting request, so none can slip in between.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#inFlight--;
    }
  }

  async #slot(): Promise<void> {
    if (this.#inFlight < this.judge!.maxConcurrent) this.#inFlight++;
    else await new Promise<void>((r) => this.#waiting.push(r));
  }

  async #finish(run: EvalRun): Promise<void> {
    const grades = new Map<TaskRec, JudgeResult>();
    for (const [t, p] of run.grades) grades.set(t, await p);
    if (this.#run !== run) return; // aborted while the judge was grading
    const result = summarizeEval(run.groups, run.version, grades, this.judge !== null);
    for (const g of run.groups) if (g.status !== "dropped") this.book.markServed(g);
    this.last = lastEvaluation(run.step, result);
    this.#run = null;
    this.log.info("evaluation done", { ...result });
    run.resolve(result);
  }
}
