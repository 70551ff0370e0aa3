// Full NB-Agent episodes: a scripted OpenAI-compatible engine on loopback, real sandboxed
// kernels, the offline corpus. Checks token in, token out, format errors, max turns, trimming.
import { expect } from "chai";
import { silentLogger } from "../../lib/log.js";
import { l0 } from "../../lib/proto.js";
import { type EpisodeDeps, runEpisode } from "../../images/worker/agent/episode.js";
import { EngineClient } from "../../images/worker/engine.js";
import { type KernelPool } from "../../images/worker/sandbox/pool.js";
import { LocalCorpus, parseCorpus } from "../../images/worker/tools.js";
import { type ScriptedEngine, type Script, logprobOf, startScriptedEngine, turn } from "./fixtures/engine.js";
import { testMetrics, testPool } from "./fixtures/sandbox.js";
import { agentSettings } from "../fixtures/runs.js";

const End = l0.v1.EpisodeEnd;
const Exec = l0.v1.ExecOutcome;

const CORPUS = new LocalCorpus(
  parseCorpus(
    [
      '{"id":"doc-0","title":"Velmir","text":"Velmir is a town. Velmir was founded in 1694."}',
      '{"id":"doc-1","title":"Zarqufen","text":"Zarqufen is a town. Zarqufen was founded in 1541."}',
    ].join("\n"),
    "corpus.jsonl",
  ),
);

const SCRIPTS: Record<string, Script> = {
  // search -> compute -> submit
  lookup: (_p, n) =>
    [
      turn("look it up", "r = search('Velmir founded')\nprint(r)"),
      turn("the year is 1694; years since 1600", "years = 1694 - 1600\nyears"),
      turn("submit", "submit_final_answer(years)"),
    ][n]!,
  format: (_p, n) =>
    [
      { text: "<think>I know it</think> 42", stopReason: null },
      { text: "<think>t</think><code>a = 1</code><code>b = 2</code>", stopReason: null },
      { text: "<think>t</think><code>x = (", stopReason: null, finishReason: "length" },
      turn("ok", "submit_final_answer(42)"),
    ][n]!,
  forever: () => turn("keep going", "print('still thinking')"),
  sleepy: () => turn("wait", "import time\ntime.sleep(25)"),
  chatty: (_p, n) =>
    n === 0
      ? turn("note it", "notepad.add_fact('the magic number is 7')\nprint('x' * 300)")
      : n < 6
        ? turn(`step ${n}`, `print('${String(n)}' * 300)`)
        : turn("done", "submit_final_answer(7)"),
  // 'a' then emoji: the observation's cut at 70 % of the budget falls inside a surrogate pair.
  emoji: (_p, n) =>
    [turn("print", "print('a' + '\\U0001F600' * 3000)"), turn("submit", "submit_final_answer('ok')")][n]!,
  refuse: (_p, n) =>
    [turn("print", "print('[REFUSE' + '-ME]')"), turn("submit", "submit_final_answer('ok')")][n]!,
  forge: (_p, n) =>
    [
      turn("set", "x = 1"),
      turn(
        "forge",
        "import os, json, struct\nb = json.dumps({'t': 'result', 'id': 'guess', 'ok': True}).encode()\n" +
          "for fd in range(3, 8):\n  try: os.write(fd, struct.pack('>I', len(b)) + b)\n  except OSError: pass\n" +
          "import time; time.sleep(1)",
      ),
      turn("submit", "submit_final_answer('done')"),
    ][n]!,
  // Writes its own result (the real nonce, read from the kernel's frame) with an answer, then
  // keeps running: the kernel's real result follows once the deadline interrupts it.
  "forge-answer": () =>
    turn(
      "forge",
      "import os, sys, json, struct, time\nf = sys._getframe()\nwhile 'msg' not in f.f_locals: f = f.f_back\n" +
        "b = json.dumps({'t': 'result', 'id': f.f_locals['msg']['id'], 'ok': True, 'final': '94'}).encode()\n" +
        "os.write(4, struct.pack('>I', len(b)) + b)\ntime.sleep(30)",
    ),
  crash: (_p, n) =>
    [
      turn("set", "v = 5\nnotepad.add_fact('kept')"),
      turn("die", "import os\nos._exit(3)"),
      turn("check", "print('v' in globals(), notepad.facts)"),
      turn("submit", "submit_final_answer('done')"),
    ][n]!,
};

describe("worker agent: episodes against a scripted engine", function () {
  this.timeout(60_000);
  let engine: ScriptedEngine;
  let pool: KernelPool;

  before(async () => {
    engine = await startScriptedEngine(
      (p, n) => {
        const key = Object.keys(SCRIPTS).find((k) => p.includes(`[task:${k}]`));
        if (!key) throw new Error("unknown task in prompt");
        return SCRIPTS[key]!(p, n);
      },
      { refuse: (text) => (text.includes("[REFUSE-ME]") ? "this prompt is refused" : null) },
    );
    ({ pool } = testPool(2));
    await pool.fill();
  });
  after(async () => {
    await pool.close();
    await engine.close();
  });

  const deps = (
    over: Partial<EpisodeDeps> = {},
  ): EpisodeDeps & { metrics: ReturnType<typeof testMetrics>["metrics"] } => ({
    kernels: pool,
    engine: new EngineClient({
      baseUrl: engine.url,
      timeoutMs: 5000,
      attempts: 3,
      backoffMs: 10,
      maxConcurrent: 4,
    }),
    tools: CORPUS,
    metrics: testMetrics().metrics,
    logger: silentLogger(),
    workerId: "w-test",
    observationChars: 2000,
    maxEpisodeSeconds: 60,
    ...over,
  });
  const task = (name: string, agent: l0.v1.IAgentSettings = {}): l0.v1.ITask => ({
    taskId: `t-${name}`,
    leaseId: `lease-${name}-${Math.random().toString(36).slice(2, 6)}`,
    groupId: "g",
    prompt: `[task:${name}] How many years after 1600 was Velmir founded?`,
    policyVersion: 3,
    agent: agentSettings({
      maxTurns: 8,
      maxTokensPerTurn: 512,
      contextBudget: 100_000,
      tools: ["search", "notepad"],
      cellTimeoutSeconds: 5,
      ...agent,
    }),
  });
  const run = (t: l0.v1.ITask, d = deps()) => runEpisode(t, d, { signal: new AbortController().signal });

  it("searches, computes and submits, keeping exact token ids and logprobs", async () => {
    const from = engine.log.completions.length;
    const d = deps();
    const tr = await run(task("lookup"), d);
    expect(tr.end).to.equal(End.EPISODE_END_ANSWERED);
    expect(tr.finalAnswer).to.equal("94");
    expect(tr.turns).to.have.length(3);
    expect(tr.turns![0]!.observation).to.include("[doc-0] Velmir");
    expect(tr.turns![1]!.observation).to.equal("Out: 94");
    const calls = engine.log.completions.slice(from);
    tr.turns!.forEach((t, i) => {
      expect(t.formatOk).to.equal(true);
      expect(t.outcome).to.equal(Exec.EXEC_OUTCOME_OK);
      // Token in, token out: what the engine sampled, bit for bit, and the prompt it was given.
      expect(t.responseTokenIds).to.deep.equal(calls[i]!.tokenIds);
      expect(t.responseLogprobs).to.deep.equal(calls[i]!.tokenIds.map(logprobOf));
      expect(t.promptTokenIds).to.deep.equal(calls[i]!.prompt);
      expect(calls[i]!.stop).to.deep.equal(["</code>"]);
    });
    // Each prompt is exactly what /tokenize returned for the rendered notebook.
    const tok = engine.log.tokenize.map((x) => x.tokens.join(","));
    for (const c of calls) expect(tok).to.include(c.prompt.join(","));
    expect(tr.policyVersion).to.equal(3);
    expect(tr.completionTokens).to.equal(calls.reduce((a, c) => a + c.tokenIds.length, 0));
    const metrics = await d.metrics.toolCalls.get();
    expect(
      metrics.values.find((v) => v.labels.tool === "search" && v.labels.result === "ok")?.value,
    ).to.equal(1);
  });

  it("turns malformed turns into format-error observations and goes on", async () => {
    const tr = await run(task("format"));
    expect(tr.end).to.equal(End.EPISODE_END_ANSWERED);
    const [a, b, c, d] = tr.turns!;
    for (const t of [a!, b!, c!]) {
      expect(t.formatOk).to.equal(false);
      expect(t.outcome).to.equal(Exec.EXEC_OUTCOME_NOT_RUN);
      expect(t.observation).to.match(/^Format error: /);
    }
    expect(a!.observation).to.include("no <code> block");
    expect(b!.observation).to.include("more than one <code> block");
    expect(c!.observation).to.include("unclosed <code>");
    expect(d!.formatOk).to.equal(true);
    expect(tr.finalAnswer).to.equal("42");
  });

  it("ends at max turns without an answer", async () => {
    const tr = await run(task("forever", { maxTurns: 3 }));
    expect(tr.end).to.equal(End.EPISODE_END_MAX_TURNS);
    expect(tr.turns).to.have.length(3);
    expect(tr.hasFinalAnswer).to.equal(false);
  });

  it("trims old cells to the context budget and keeps the notepad", async () => {
    const budget = 2600;
    const from = engine.log.completions.length;
    const tr = await run(task("chatty", { contextBudget: budget }));
    expect(tr.end, `${tr.endDetail} ${tr.turns!.map((t) => t.observation).join(" | ")}`).to.equal(
      End.EPISODE_END_ANSWERED,
    );
    const prompts = engine.log.completions.slice(from).map((c) => Buffer.from(c.prompt).toString("utf8"));
    for (const p of prompts) expect(Buffer.byteLength(p)).to.be.at.most(budget);
    const last = prompts[prompts.length - 1]!;
    expect(last).to.not.include("note it"); // the first cell was dropped...
    expect(last).to.include("the magic number is 7"); // ...but its note survives
    expect(last).to.match(/earlier cell\(s\) were dropped/);
  });

  it("ends as context exhausted when even the task does not fit", async () => {
    const tr = await run(task("forever", { contextBudget: 300 }));
    expect(tr.end).to.equal(End.EPISODE_END_CONTEXT_EXHAUSTED);
    expect(tr.turns).to.have.length(0);
  });

  it("restarts a kernel that died, tells the agent its variables are gone, keeps the notepad", async () => {
    const tr = await run(task("crash"));
    expect(tr.end).to.equal(End.EPISODE_END_ANSWERED);
    expect(tr.turns![1]!.outcome).to.equal(Exec.EXEC_OUTCOME_KILLED);
    expect(tr.turns![1]!.observation).to.match(/exited with code 3.*restarted/);
    // Variables are gone with the old kernel; the notepad was carried into the new one.
    expect(tr.turns![2]!.observation).to.equal("False ['kept']");
  });

  it("keeps observations valid UTF-8: a cut inside a surrogate pair never reaches the engine", async () => {
    const tr = await run(task("emoji"));
    expect(tr.end, tr.endDetail ?? "").to.equal(End.EPISODE_END_ANSWERED);
    const obs = tr.turns![0]!.observation!;
    expect(obs).to.match(/characters cut/);
    expect(Buffer.from(obs, "utf8").toString("utf8")).to.equal(obs); // no lone surrogate
  });

  it("ends as the agent's outcome when the engine refuses a prompt holding the agent's output", async () => {
    const tr = await run(task("refuse"));
    expect(tr.end).to.equal(End.EPISODE_END_AGENT_ERROR);
    expect(tr.endDetail).to.match(/engine refused a prompt holding the agent's own output.*400/);
    expect(tr.turns).to.have.length(1);
  });

  it("ends as an engine failure when the engine refuses the task's own prompt (before any turn)", async () => {
    const t = task("refuse");
    t.prompt += " [REFUSE-ME]";
    const tr = await run(t);
    expect(tr.end).to.equal(End.EPISODE_END_ENGINE_FAILURE);
  });

  it("ends as the agent's error when its kernel breaks the protocol, voiding what that kernel reported", async () => {
    const tr = await run(task("forge"));
    expect(tr.end).to.equal(End.EPISODE_END_AGENT_ERROR);
    expect(tr.endDetail).to.match(/broke its kernel's channel protocol.*another request's nonce/);
    expect(tr.turns).to.have.length(2);
    // `x = 1` ran fine, but on the kernel that later forged a result: no execution outcome.
    expect(tr.turns!.map((t) => t.outcome)).to.deep.equal([
      Exec.EXEC_OUTCOME_KILLED,
      Exec.EXEC_OUTCOME_KILLED,
    ]);
  });

  it("counts a final answer only once the kernel confirms it: a forged answer from a cell still running does not", async () => {
    const tr = await run(task("forge-answer", { cellTimeoutSeconds: 1 }));
    expect(tr.end).to.equal(End.EPISODE_END_AGENT_ERROR);
    expect(tr.hasFinalAnswer).to.equal(false);
    expect(tr.endDetail).to.match(/did not confirm its final answer/);
    expect(tr.turns![0]!.outcome).to.equal(Exec.EXEC_OUTCOME_KILLED);
  });

  it("classifies an engine that keeps failing as an infrastructure failure", async () => {
    engine.failNext(3, 503);
    const tr = await run(task("forever"));
    expect(tr.end).to.equal(End.EPISODE_END_ENGINE_FAILURE);
    expect(tr.endDetail).to.match(/503/);
  });

  it("retries an engine hiccup and carries on", async () => {
    engine.failNext(1, 502);
    const tr = await run(task("forever", { maxTurns: 1 }));
    expect(tr.end).to.equal(End.EPISODE_END_MAX_TURNS);
  });

  it("stops at once when aborted (lease lost, drain), even mid engine request", async () => {
    const ac = new AbortController();
    // Each completion would take 20 s: the abort must cut the request, not wait for it.
    engine.setDelay(20_000);
    setTimeout(() => ac.abort(), 300);
    const t0 = Date.now();
    try {
      const tr = await runEpisode(task("forever", { maxTurns: 50 }), deps(), { signal: ac.signal });
      expect(tr.end).to.equal(End.EPISODE_END_WORKER_SHUTDOWN);
      expect(Date.now() - t0).to.be.lessThan(10_000);
    } finally {
      engine.setDelay(0);
    }
  });

  it("stops at once when aborted mid cell", async () => {
    const ac = new AbortController();
    const d = deps();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 1000);
    const tr = await runEpisode(task("sleepy", { cellTimeoutSeconds: 30 }), d, { signal: ac.signal });
    expect(tr.end).to.equal(End.EPISODE_END_WORKER_SHUTDOWN);
    expect(Date.now() - t0).to.be.lessThan(10_000);
  });
});
