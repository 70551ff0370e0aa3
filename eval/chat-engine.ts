// Episodes against an endpoint that offers only OpenAI's `POST /v1/chat/completions` (a hosted
// API), for evaluation: no token ids come back, so nothing here could be trained on. The episode
// code asks the engine to tokenize its notebook and then samples from those ids; here
// "tokenizing" keeps the messages under a handle (the first pseudo token id, the rest padding to
// the estimated length so the context budget still trims the notebook) and "completing" sends
// those messages as a chat, stopping at </code>.
import {
  type ChatMessage,
  type Completion,
  type CompletionRequest,
  EngineClient,
  EngineError,
} from "../images/worker/engine.js";
import { estimateTokens } from "../images/worker/agent/notebook.js";

export interface ChatEngineOptions {
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

export class ChatEngine extends EngineClient {
  readonly #pending = new Map<number, ChatMessage[]>();
  #next = 1;
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(private readonly chat: ChatEngineOptions) {
    super({ ...chat, maxConcurrent: 1 });
    this.#fetch = chat.fetch ?? fetch;
    this.#sleep = chat.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  override tokenize(
    _model: string,
    messages: ChatMessage[],
  ): Promise<{ tokens: number[]; maxModelLen: number }> {
    const handle = this.#next++;
    this.#pending.set(handle, messages);
    const length = Math.max(1, estimateTokens(messages.map((m) => m.content).join("")));
    return Promise.resolve({
      tokens: [handle, ...new Array<number>(length - 1).fill(0)],
      maxModelLen: Number.MAX_SAFE_INTEGER,
    });
  }

  override async complete(req: CompletionRequest, signal?: AbortSignal): Promise<Completion> {
    const messages = this.#pending.get(req.prompt[0] ?? -1);
    if (!messages) throw new EngineError("chat engine: the prompt was not tokenized by this client", false);
    // A handle serves one completion; the episode tokenizes again before its next turn.
    this.#pending.delete(req.prompt[0]!);
    const body = {
      model: req.model,
      messages,
      max_tokens: req.maxTokens,
      temperature: req.temperature,
      top_p: req.topP,
      stop: req.stop,
    };
    let last = new EngineError("no attempt made", true);
    for (let attempt = 1; attempt <= this.chat.attempts; attempt++) {
      if (attempt > 1) await this.#sleep(this.chat.backoffMs * 2 ** (attempt - 2));
      if (signal?.aborted) throw new EngineError("chat engine: aborted", false);
      try {
        return await this.#once(body, signal);
      } catch (err) {
        last =
          err instanceof EngineError ? err : new EngineError(`chat engine: ${(err as Error).message}`, true);
        if (!last.retryable) throw last;
      }
    }
    throw last;
  }

  async #once(body: unknown, signal?: AbortSignal): Promise<Completion> {
    const timeout = AbortSignal.timeout(this.chat.timeoutMs);
    const res = await this.#fetch(this.chat.baseUrl.replace(/\/$/, "") + "/v1/chat/completions", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(this.chat.apiKey ? { authorization: `Bearer ${this.chat.apiKey}` } : {}),
      },
      body: JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    const text = await res.text();
    if (!res.ok)
      throw new EngineError(
        `chat engine answered ${res.status}: ${text.slice(0, 300)}`,
        res.status >= 500 || res.status === 429,
        res.status,
      );
    const c = (
      JSON.parse(text) as { choices?: { message?: { content?: unknown }; finish_reason?: unknown }[] }
    ).choices?.[0];
    if (typeof c?.message?.content !== "string")
      throw new EngineError("chat engine response: choices[0].message.content is missing", false);
    return {
      text: c.message.content,
      tokenIds: [],
      logprobs: [],
      finishReason: typeof c.finish_reason === "string" ? c.finish_reason : "",
      stopReason: null,
      policyVersion: null,
      promptTokenIds: null,
    };
  }
}
