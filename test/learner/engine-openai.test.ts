// The learner's CPU engine driven by the official `openai` SDK, the way users call it: streamed
// answers arrive in chunks and join to the non-streamed answer for the same seed (both routes),
// max_completion_tokens is honoured, and each parameter the engine cannot honour is a 400 that
// names it. The worker's own engine client still reads the same process's answers.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI, { BadRequestError } from "openai";
import { type LaunchedLearner, launchLearner } from "../../images/trainer/learner/client.js";
import { EngineClient } from "../../images/worker/engine.js";

/** Our extensions on a choice or chunk choice (docs/engine-api.md). */
interface WithIds {
  token_ids?: number[];
  prompt_token_ids?: number[];
}

const ids = (choice: unknown): number[] => (choice as WithIds).token_ids ?? [];

type ChatBody = OpenAI.ChatCompletionCreateParamsNonStreaming;
type TextBody = OpenAI.CompletionCreateParamsNonStreaming;

describe("the CPU engine through the openai SDK", function () {
  this.timeout(120_000);
  let dir: string;
  let learner: LaunchedLearner;
  let client: OpenAI;
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "What is 2+2?" }];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "l0-engine-openai-"));
    writeFileSync(join(dir, "token"), "t0ken\n", { mode: 0o600 });
    learner = await launchLearner({
      flags: { tokenFile: join(dir, "token"), nLayer: 1, nEmbd: 32, nHead: 2, blockSize: 128, seed: 3 },
    });
    client = new OpenAI({ baseURL: learner.engineUrl, apiKey: "unused", maxRetries: 0, timeout: 60_000 });
  });

  after(async () => {
    await learner?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("streams completions in chunks that join to the non-streamed answer for the same seed", async () => {
    const body = { model: "tiny", prompt: "Q: 2+2?\nA:", max_tokens: 24, seed: 7, logprobs: 1 };
    const whole = await client.completions.create(body);
    const stream = await client.completions.create({
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Completion[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const pieces = chunks.filter((c) => c.choices.length > 0);
    expect(pieces.length).to.be.greaterThan(2); // it really streamed
    expect(pieces.map((c) => c.choices[0]!.text).join("")).to.equal(whole.choices[0]!.text);
    expect(pieces.flatMap((c) => ids(c.choices[0]))).to.deep.equal(ids(whole.choices[0]));
    expect(pieces.flatMap((c) => c.choices[0]!.logprobs?.token_logprobs ?? [])).to.deep.equal(
      whole.choices[0]!.logprobs?.token_logprobs,
    );
    expect(pieces.at(-1)!.choices[0]!.finish_reason).to.equal(whole.choices[0]!.finish_reason);
    expect(chunks.at(-1)!.usage).to.deep.equal(whole.usage);
  });

  it("streams chat completions in chunks that join to the non-streamed answer for the same seed", async () => {
    const body: ChatBody = { model: "tiny", messages, max_completion_tokens: 24, seed: 11, logprobs: true };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({ ...body, stream: true });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).to.be.greaterThan(2);
    expect(chunks[0]!.choices[0]!.delta.role).to.equal("assistant");
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).to.equal(whole.choices[0]!.message.content);
    expect(chunks.flatMap((c) => ids(c.choices[0]))).to.deep.equal(ids(whole.choices[0]));
    const lps = chunks.flatMap((c) => c.choices[0]?.logprobs?.content ?? []);
    expect(lps).to.deep.equal(whole.choices[0]!.logprobs?.content);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).to.equal(whole.choices[0]!.finish_reason);
  });

  it("honours max_completion_tokens like max_tokens", async () => {
    const free = await client.chat.completions.create({ model: "tiny", messages, seed: 5 });
    const capped = await client.chat.completions.create({
      model: "tiny",
      messages,
      seed: 5,
      max_completion_tokens: 3,
    });
    const n = Math.min(3, free.usage!.completion_tokens);
    expect(capped.usage!.completion_tokens).to.equal(n);
    expect(ids(capped.choices[0])).to.deep.equal(ids(free.choices[0]).slice(0, n));
  });

  describe("answers 400 naming each parameter it cannot honour", () => {
    const chat = (extra: object): ChatBody => ({ model: "tiny", messages, max_tokens: 2, ...extra });
    const text = (extra: object): TextBody => ({ model: "tiny", prompt: "x", max_tokens: 2, ...extra });
    const table: [string, "chat" | "text", object][] = [
      ["echo", "text", { echo: true }],
      ["logprobs", "text", { logprobs: 21 }],
      ["top_logprobs", "chat", { logprobs: true, top_logprobs: 21 }],
      ["tools", "chat", { tools: [{ type: "function", function: { name: "add" } }] }],
      ["tool_choice", "chat", { tool_choice: "required" }],
      ["response_format", "chat", { response_format: { type: "json_object" } }],
      ["n", "chat", { n: 2 }],
      ["n", "text", { n: 3 }],
      ["presence_penalty", "chat", { presence_penalty: 1 }],
      ["logit_bias", "text", { logit_bias: { "97": 10 } }],
      ["top_k", "chat", { top_k: 5 }], // vLLM's extension, sent as extra body
      ["guided_json", "chat", { guided_json: {} }], // removed from vLLM; unknown here
      ["temperature", "chat", { temperature: "hot" }], // badly typed
      ["stream_options", "text", { stream_options: { include_usage: true } }], // without stream
    ];
    for (const [param, route, extra] of table) {
      it(`${param} (${route})`, async () => {
        const call =
          route === "chat"
            ? client.chat.completions.create(chat(extra))
            : client.completions.create(text(extra));
        const err = await call.then(
          () => expect.fail(`${param} was accepted`),
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(BadRequestError);
        const bad = err as BadRequestError;
        expect([bad.status, bad.param, bad.type]).to.deep.equal([400, param, "invalid_request_error"]);
        expect(bad.message).to.include(`${param}:`);
      });
    }
  });

  it("still serves the worker's own client unchanged", async () => {
    const engine = new EngineClient({
      baseUrl: learner.engineUrl.replace(/\/v1$/, ""),
      timeoutMs: 30_000,
      attempts: 1,
      backoffMs: 1,
      maxConcurrent: 2,
    });
    const { tokens } = await engine.tokenize("tiny", [{ role: "user", content: "What is 2+2?" }]);
    const c = await engine.complete({
      model: "tiny",
      prompt: tokens,
      maxTokens: 8,
      temperature: 1,
      topP: 1,
      stop: ["\n"],
    });
    expect(c.tokenIds.length).to.be.greaterThan(0);
    expect(c.logprobs).to.have.length(c.tokenIds.length);
    expect(c.promptTokenIds).to.deep.equal(tokens);
    expect(c.policyVersion).to.equal(0);
  });
});
