// One held-out evaluation at a time: every question as a group of one episode (never trained
// on), the result once the last group finishes, and the latest accuracy for Stats and
// checkpoints. The hub decides when an evaluation may start; this keeps its bookkeeping.
import { L0Error } from "../../../lib/errors.js";
import { type Logger } from "../../../lib/log.js";
import { type EvalResult, summarizeEval } from "./assemble.js";
import { type GroupRec, type TaskBook } from "./book.js";
import { type Question } from "./dataset.js";

interface EvalRun {
  groups: Set<GroupRec>;
  remaining: number;
  version: number;
  resolve: (r: EvalResult) => void;
}

export class Evaluations {
  #run: EvalRun | null = null;
  /** The last finished evaluation's accuracy (kept across restarts through the checkpoint). */
  accuracy: number | null = null;

  constructor(
    private readonly book: TaskBook,
    private readonly log: Logger,
  ) {}

  get running(): boolean {
    return this.#run !== null;
  }

  /** Issues one eval group per question, leased with `version`; resolves with the summary. */
  start(questions: Question[], version: number, signal?: AbortSignal): Promise<EvalResult> {
    if (this.#run)
      return Promise.reject(new L0Error("FailedPrecondition", "an evaluation is already running"));
    return new Promise<EvalResult>((resolve, reject) => {
      const run: EvalRun = { groups: new Set(), remaining: questions.length, version, resolve };
      this.#run = run;
      signal?.addEventListener(
        "abort",
        () => {
          for (const g of run.groups) this.book.dropGroup(g, "aborted", "evaluation aborted");
          this.#run = null;
          reject(new L0Error("Unavailable", "evaluation aborted"));
        },
        { once: true },
      );
      for (const q of questions) run.groups.add(this.book.addGroup(q, 1, true));
      if (questions.length === 0) this.#finish(run);
    });
  }

  /** The book finished an eval group (answered or dropped). */
  groupFinished(g: GroupRec): void {
    const run = this.#run;
    if (run && run.groups.has(g) && --run.remaining === 0) this.#finish(run);
  }

  #finish(run: EvalRun): void {
    const result = summarizeEval(run.groups, run.version);
    for (const g of run.groups) if (g.status !== "dropped") this.book.markServed(g);
    this.accuracy = result.accuracy;
    this.#run = null;
    this.log.info("evaluation done", { ...result });
    run.resolve(result);
  }
}
