// The worker's side of one cell's tool calls: each call a kernel makes is answered exactly once,
// at most MAX_TOOL_CALLS_PER_CELL are served, and at the cell's deadline every call still in
// flight is answered with an error at once (its handler aborted), so a slow search can neither
// hold a cell past its deadline nor answer into the next one.
import { MAX_TOOL_CALLS_PER_CELL, type ToolFrame } from "./framing.js";

/** Runs a tool for a kernel; `signal` aborts when the cell's deadline passes or the cell ends. */
export type ToolHandler = (name: string, arg: string, signal: AbortSignal) => Promise<string>;

type Reply =
  | { t: "tool_result"; id: number; ok: true; value: string }
  | {
      t: "tool_result";
      id: number;
      ok: false;
      error: string;
    };

export class ToolCalls {
  #count = 0;
  #closed = false;
  /** Armed while a call is in flight: at the deadline, every waiting call is answered. */
  #timer: NodeJS.Timeout | null = null;
  readonly #inflight = new Map<number, AbortController>();

  /**
   * `send` delivers a reply to the kernel (the caller drops it once the cell is over);
   * `deadlineMs` is the cell's deadline on performance.now()'s clock, `why` the error after it.
   */
  constructor(
    private readonly handler: ToolHandler,
    private readonly send: (reply: Reply) => void,
    private readonly deadlineMs: number,
    private readonly why: string,
  ) {}

  call(f: ToolFrame): void {
    if (this.#closed) return;
    const fail = (error: string): void => this.send({ t: "tool_result", id: f.id, ok: false, error });
    if (++this.#count > MAX_TOOL_CALLS_PER_CELL)
      return fail(`more than ${MAX_TOOL_CALLS_PER_CELL} tool calls in one cell`);
    const left = this.deadlineMs - performance.now();
    if (left <= 0) return fail(this.why);
    if (this.#inflight.has(f.id)) return fail(`tool call ${f.id} is already running`);
    const ac = new AbortController();
    this.#inflight.set(f.id, ac);
    this.#timer ??= setTimeout(() => this.#expire(), left);
    void this.#run(f, ac.signal).then((reply) => {
      // Answered already (deadline) or the cell is over: this answer has nowhere to go.
      if (this.#inflight.get(f.id) !== ac) return;
      this.#inflight.delete(f.id);
      this.send(reply);
    });
  }

  /** The cell is over: abort what still runs, answer nothing more. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const ac of this.#inflight.values()) ac.abort();
    this.#inflight.clear();
  }

  /** The cell's deadline passed: answer every waiting call with the reason (new ones see it too). */
  #expire(): void {
    for (const [id, ac] of this.#inflight) {
      this.#inflight.delete(id);
      ac.abort();
      this.send({ t: "tool_result", id, ok: false, error: this.why });
    }
  }

  async #run(f: ToolFrame, signal: AbortSignal): Promise<Reply> {
    try {
      return { t: "tool_result", id: f.id, ok: true, value: await this.handler(f.name, f.arg, signal) };
    } catch (err) {
      return { t: "tool_result", id: f.id, ok: false, error: (err as Error).message };
    }
  }
}
