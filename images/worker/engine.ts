// Client of the engine HTTP contract (docs/engine-api.md): tokenize the notebook with the
// engine's chat template, sample from those exact ids, keep sampled ids and logprobs. Every
// request has a timeout, bounded retries with backoff, and a per-worker concurrency limit.

/** One chat message as the OpenAI chat API (and the engine's chat template) takes it. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export class EngineError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    /** The engine's HTTP status, when it answered with an error. */
    readonly status: number | null = null,
  ) {
    super(message);
  }

  /**
   * The engine refused the request itself (a malformed or too long prompt): asking again cannot
   * help, and when the prompt holds the agent's output the agent caused it. Auth, routing and
   * rate limits (401/403/404/429) are the deployment's trouble, not the prompt's.
   */
  get promptRejected(): boolean {
    return this.status === 400 || this.status === 413 || this.status === 422;
  }
}

export interface Completion {
  text: string;
  tokenIds: number[];
  logprobs: number[];
  finishReason: string;
  /** The stop string that ended the sample, when the engine says (vLLM stop_reason, SGLang matched_stop). */
  stopReason: string | null;
  policyVersion: number | null;
  promptTokenIds: number[] | null;
}

export interface CompletionRequest {
  model: string;
  prompt: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  stop: string[];
}

export interface EngineOptions {
  baseUrl: string;
  timeoutMs: number;
  /** Attempts per request, including the first. */
  attempts: number;
  backoffMs: number;
  maxConcurrent: number;
  /** Observes each HTTP request (l0_llm_request_seconds). */
  onRequest?: (endpoint: "tokenize" | "completions", seconds: number, ok: boolean) => void;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

/** Counting semaphore: at most `n` requests in flight from this worker. */
class Semaphore {
  #free: number;
  #waiters: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiters.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#waiters.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** Reads a completion response per the contract; throws EngineError naming the missing field. */
export function parseCompletion(body: unknown): Completion {
  const b = body as {
    choices?: {
      text?: unknown;
      finish_reason?: unknown;
      stop_reason?: unknown;
      matched_stop?: unknown;
      token_ids?: unknown;
      logprobs?: { tokens?: unknown; token_logprobs?: unknown };
    }[];
    policy_version?: unknown;
    prompt_token_ids?: unknown;
  };
  const c = b?.choices?.[0];
  if (!c) throw new EngineError("engine response: choices[0] is missing", false);
  let ids: number[] | null = null;
  if (Array.isArray(c.token_ids)) ids = c.token_ids.map(Number);
  else if (Array.isArray(c.logprobs?.tokens))
    ids = (c.logprobs.tokens as unknown[]).map((t) => Number(/^token_id:(\d+)$/.exec(String(t))?.[1] ?? NaN));
  if (!ids || ids.some((x) => !Number.isInteger(x) || x < 0))
    throw new EngineError(
      "engine response: choices[0].token_ids (or logprobs.tokens as token_id:N) is missing",
      false,
    );
  const lps = c.logprobs?.token_logprobs;
  if (!Array.isArray(lps) || lps.length !== ids.length)
    throw new EngineError(
      `engine response: choices[0].logprobs.token_logprobs must have one number per token (${ids.length})`,
      false,
    );
  const bad = lps.findIndex((x) => typeof x !== "number" || !Number.isFinite(x));
  if (bad >= 0)
    throw new EngineError(
      `engine response: choices[0].logprobs.token_logprobs[${bad}] is ${JSON.stringify(lps[bad])}, not a finite number`,
      false,
    );
  const v = b.policy_version;
  if (v !== undefined && v !== null && (typeof v !== "number" || !Number.isInteger(v) || v < 0))
    // An inference engine that has loaded no exported version yet answers -1: retried, never
    // recorded as a sample of some version.
    throw new EngineError(
      `engine response: policy_version ${JSON.stringify(v)}: the engine serves no policy version yet`,
      true,
    );
  const stop = c.stop_reason ?? c.matched_stop;
  return {
    text: typeof c.text === "string" ? c.text : "",
    tokenIds: ids,
    logprobs: lps as number[],
    finishReason: typeof c.finish_reason === "string" ? c.finish_reason : "",
    stopReason: typeof stop === "string" ? stop : null,
    policyVersion: typeof v === "number" ? v : null,
    promptTokenIds: Array.isArray(b.prompt_token_ids) ? b.prompt_token_ids.map(Number) : null,
  };
}

export class EngineClient {
  readonly #sem: Semaphore;
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: EngineOptions) {
    this.#sem = new Semaphore(opts.maxConcurrent);
    this.#fetch = opts.fetch ?? fetch;
    this.#sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  async tokenize(
    model: string,
    messages: ChatMessage[],
    signal?: AbortSignal,
  ): Promise<{ tokens: number[]; maxModelLen: number }> {
    const body = (await this.#post(
      "tokenize",
      "/tokenize",
      { model, messages, add_generation_prompt: true },
      signal,
    )) as { tokens?: unknown; max_model_len?: unknown };
    if (!Array.isArray(body.tokens))
      throw new EngineError("engine /tokenize response: tokens is missing", false);
    return {
      tokens: body.tokens.map(Number),
      maxModelLen: typeof body.max_model_len === "number" ? body.max_model_len : Number.MAX_SAFE_INTEGER,
    };
  }

  /** `signal` aborts the request and its retries (lease lost, drain deadline). */
  async complete(req: CompletionRequest, signal?: AbortSignal): Promise<Completion> {
    const body = await this.#post(
      "completions",
      "/v1/completions",
      {
        model: req.model,
        prompt: req.prompt,
        max_tokens: req.maxTokens,
        temperature: req.temperature,
        top_p: req.topP,
        stop: req.stop,
        logprobs: 1,
        return_tokens_as_token_ids: true,
        return_token_ids: true,
      },
      signal,
    );
    return parseCompletion(body);
  }

  async #post(
    endpoint: "tokenize" | "completions",
    path: string,
    payload: unknown,
    signal?: AbortSignal,
  ): Promise<unknown> {
    let last: EngineError = new EngineError("no attempt made", true);
    for (let attempt = 1; attempt <= this.opts.attempts; attempt++) {
      if (attempt > 1)
        await this.#sleep(this.opts.backoffMs * 2 ** (attempt - 2) * (0.5 + Math.random() / 2));
      if (signal?.aborted) throw new EngineError(`engine ${path}: aborted`, false);
      const t0 = performance.now();
      try {
        const body = await this.#sem.run(() => this.#once(path, payload, signal));
        this.opts.onRequest?.(endpoint, (performance.now() - t0) / 1000, true);
        return body;
      } catch (err) {
        this.opts.onRequest?.(endpoint, (performance.now() - t0) / 1000, false);
        last =
          err instanceof EngineError
            ? err
            : new EngineError(`engine ${path}: ${(err as Error).message}`, true);
        if (!last.retryable) throw last;
      }
    }
    throw last;
  }

  async #once(path: string, payload: unknown, signal?: AbortSignal): Promise<unknown> {
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    let res: Response;
    try {
      res = await this.#fetch(this.opts.baseUrl.replace(/\/$/, "") + path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(payload),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      const e = err as Error;
      if (signal?.aborted) throw new EngineError(`engine ${path}: aborted`, false);
      const why = e.name === "TimeoutError" ? `timed out after ${this.opts.timeoutMs} ms` : e.message;
      throw new EngineError(`engine ${path}: ${why}`, true);
    }
    const text = await res.text();
    if (!res.ok) {
      let msg = text.slice(0, 300);
      try {
        msg = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? msg;
      } catch {
        // Not JSON: keep the raw text.
      }
      // 5xx and 429 are the engine's trouble and may pass; other 4xx will not.
      throw new EngineError(
        `engine ${path} answered ${res.status}: ${msg}`,
        res.status >= 500 || res.status === 429,
        res.status,
      );
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new EngineError(`engine ${path}: response is not JSON`, true);
    }
  }
}
