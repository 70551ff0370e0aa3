// SimpleQA-style grading by an LLM judge at an OpenAI-compatible `/v1/chat/completions` endpoint:
// correct, incorrect or not attempted. The grader prompt is our own (docs/eval.md explains it).
// A judge that fails or answers without a grade is retried; if it keeps failing the question is
// counted as `judge_failed`, never graded incorrect. Shared by `l0 eval` and the hub's in-run
// evaluation (the hub holds the reference answers), so both grade alike.

export type Grade = "correct" | "incorrect" | "not_attempted";
export type Judgement = Grade | "judge_failed";

/** The instructions the judge gets; the three letters map to the grades in GRADE_OF. */
export const GRADER_INSTRUCTIONS = `You grade one answer to a factual question against the reference answer.
Reply with one letter and nothing else:
A - CORRECT: the answer states the reference answer's meaning (wording, order, letter case,
    added explanation or minor misspellings of a name do not matter) and contradicts nothing in it.
    A number is correct when it equals the reference to the precision the reference gives.
B - INCORRECT: the answer states something that contradicts the reference, or gives a different
    fact, or lists several candidates of which some are wrong. A hedged but wrong answer is B.
C - NOT ATTEMPTED: the answer gives no fact for the question (a refusal, "I don't know", a
    request for more information, or only part of what the question asks without anything wrong).
Judge only the answer against the reference; do not use your own knowledge of the facts.`;

const GRADE_OF: Record<string, Grade> = { A: "correct", B: "incorrect", C: "not_attempted" };

export function graderMessages(
  question: string,
  reference: string,
  answer: string,
): { role: "system" | "user"; content: string }[] {
  return [
    { role: "system", content: GRADER_INSTRUCTIONS },
    {
      role: "user",
      content: `Question: ${question}\nReference answer: ${reference}\nAnswer to grade: ${answer}\nGrade (A, B or C):`,
    },
  ];
}

/** The grade in a judge's reply: its first standalone A, B or C (or the grade's name), else null. */
export function parseGrade(reply: string): Grade | null {
  const t = reply.trim();
  const letter = /^\W*([ABC])\b/.exec(t)?.[1] ?? /\b([ABC])\b/.exec(t)?.[1];
  if (letter) return GRADE_OF[letter]!;
  const word = /\b(NOT[ _]ATTEMPTED|INCORRECT|CORRECT)\b/i.exec(t)?.[1]?.toUpperCase();
  if (!word) return null;
  return word.startsWith("NOT") ? "not_attempted" : word === "INCORRECT" ? "incorrect" : "correct";
}

export interface JudgeOptions {
  baseUrl: string;
  model: string;
  /** Sent as a bearer token when set (hosted APIs). */
  apiKey?: string;
  attempts: number;
  timeoutMs: number;
  backoffMs: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

export interface JudgeResult {
  judgement: Judgement;
  /** Requests made (1 when the first one graded). */
  attempts: number;
  /** The judge's last reply, or the last error when it failed. */
  detail: string;
}

export class Judge {
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: JudgeOptions) {
    this.#fetch = opts.fetch ?? fetch;
    this.#sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /**
   * An episode without an answer did not attempt: no judge call. `signal` (a stopping caller)
   * ends the retries and the request in flight; the answer then counts as judge_failed.
   */
  async grade(
    question: string,
    reference: string,
    answer: string | null,
    signal?: AbortSignal,
  ): Promise<JudgeResult> {
    if (answer === null || answer.trim() === "")
      return { judgement: "not_attempted", attempts: 0, detail: "no final answer" };
    let detail = "";
    let attempt = 0;
    while (attempt < this.opts.attempts && !signal?.aborted) {
      attempt++;
      if (attempt > 1) await this.#sleep(this.opts.backoffMs * 2 ** (attempt - 2));
      try {
        const reply = await this.#ask(graderMessages(question, reference, answer), signal);
        const g = parseGrade(reply);
        if (g) return { judgement: g, attempts: attempt, detail: reply.slice(0, 200) };
        detail = `no grade in the judge's reply: ${JSON.stringify(reply.slice(0, 200))}`;
      } catch (err) {
        detail = (err as Error).message;
      }
    }
    return { judgement: "judge_failed", attempts: attempt, detail: signal?.aborted ? "aborted" : detail };
  }

  async #ask(messages: { role: string; content: string }[], signal?: AbortSignal): Promise<string> {
    const res = await this.#fetch(this.opts.baseUrl.replace(/\/$/, "") + "/v1/chat/completions", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}),
      },
      body: JSON.stringify({ model: this.opts.model, messages, temperature: 0, max_tokens: 8 }),
      signal: signal
        ? AbortSignal.any([signal, AbortSignal.timeout(this.opts.timeoutMs)])
        : AbortSignal.timeout(this.opts.timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`judge answered ${res.status}: ${text.slice(0, 200)}`);
    const content = (JSON.parse(text) as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]
      ?.message?.content;
    if (typeof content !== "string") throw new Error("judge response: choices[0].message.content is missing");
    return content;
  }
}
