// The state and steps of one running episode (runEpisode in episode.ts resolves its settings):
// prompt within the context budget -> the model's turn -> the cell in the episode's kernel ->
// observation. Infrastructure failures end it with reasons; so do agent-caused ones, as agent
// outcomes the hub scores: a kernel the agent's code killed too often, an engine that refuses a
// prompt made of the agent's own output.
import { type Logger } from "../../../lib/log.js";
import { l0 } from "../../../lib/proto.js";
import { EngineError } from "../engine.js";
import { toolLabel } from "../metrics.js";
import { type Notepad } from "../sandbox/framing.js";
import { type CellResult, type Kernel } from "../sandbox/kernel.js";
import { CODE_CLOSE, parseTurn } from "./format.js";
import {
  type Cell,
  buildMessages,
  estimateTokens,
  firstKeptCell,
  renderNotepad,
  renderObservation,
  systemPrompt,
} from "./notebook.js";
import { type EpisodeControl, type EpisodeDeps } from "./types.js";

const End = l0.v1.EpisodeEnd;
const Exec = l0.v1.ExecOutcome;

const EXEC_OF: Record<CellResult["outcome"], l0.v1.ExecOutcome> = {
  ok: Exec.EXEC_OUTCOME_OK,
  error: Exec.EXEC_OUTCOME_ERROR,
  timeout: Exec.EXEC_OUTCOME_TIMEOUT,
  killed: Exec.EXEC_OUTCOME_KILLED,
};

/** An episode's settings, resolved from the task and the worker's caps. */
export interface EpisodeSettings {
  tools: string[];
  maxTurns: number;
  maxTokens: number;
  budget: number;
  cellMs: number;
  episodeMs: number;
  model: string;
  temperature: number;
  topP: number;
}

/** The episode ends here with this trajectory. */
type Ended = { end: l0.v1.ITrajectory };
const SHUTDOWN = "stopped: lease lost or worker draining";

export class EpisodeRun {
  readonly #started = Date.now();
  readonly #deadline: number;
  readonly #turns: l0.v1.ITurn[] = [];
  readonly #cells: Cell[] = [];
  #notepad: Notepad | null = null;
  #policyVersion: number | null = null;
  #finalAnswer: string | null = null;
  #restarts = 0;
  #kernel: Kernel | null = null;
  /** Turns the current kernel ran: a kernel that breaks the protocol voids what it reported. */
  #kernelTurns: l0.v1.ITurn[] = [];

  constructor(
    private readonly task: l0.v1.ITask,
    private readonly deps: EpisodeDeps,
    private readonly ctl: EpisodeControl,
    private readonly s: EpisodeSettings,
    private readonly log: Logger,
  ) {
    this.#deadline = this.#started + s.episodeMs;
  }

  async run(): Promise<l0.v1.ITrajectory> {
    const onAbort = (): void => void this.#kernel?.kill();
    this.ctl.signal.addEventListener("abort", onAbort);
    try {
      const startErr = await this.#newKernel();
      if (startErr) return this.#finish(End.EPISODE_END_SANDBOX_FAILURE, startErr);
      for (let turn = 0; turn < this.s.maxTurns; turn++) {
        if (this.ctl.signal.aborted) return this.#finish(End.EPISODE_END_WORKER_SHUTDOWN, SHUTDOWN);
        if (Date.now() >= this.#deadline)
          return this.#finish(
            End.EPISODE_END_AGENT_ERROR,
            `the episode passed its ${this.s.episodeMs / 1000} s wall-clock limit`,
          );
        const prompt = await this.#prompt();
        if ("end" in prompt) return prompt.end;
        const ended = await this.#turn(prompt.tokens, prompt.room);
        if (ended) return ended.end;
        if (this.#finalAnswer !== null) return await this.#answered();
      }
      return this.#finish(End.EPISODE_END_MAX_TURNS, `no answer after ${this.s.maxTurns} turns`);
    } catch (err) {
      return this.#failure(err);
    } finally {
      this.ctl.signal.removeEventListener("abort", onAbort);
      if (this.#kernel) await this.deps.kernels.discard(this.#kernel);
    }
  }

  /** The notebook, trimmed to the context budget (newest cells kept, notepad always), as token ids. */
  async #prompt(): Promise<{ tokens: number[]; room: number } | Ended> {
    const { task, s } = this;
    const fixed = estimateTokens(systemPrompt(s.tools) + (task.prompt ?? "") + renderNotepad(this.#notepad));
    let first = firstKeptCell(this.#cells, fixed, s.budget);
    for (;;) {
      const messages = buildMessages({
        tools: s.tools,
        task: task.prompt ?? "",
        cells: this.#cells,
        firstKept: first,
        notepad: this.#notepad,
      });
      const t = await this.deps.engine.tokenize(s.model, messages, this.ctl.signal);
      if (t.tokens.length <= s.budget) {
        const room = Math.min(s.maxTokens, t.maxModelLen - t.tokens.length);
        if (room > 0) return { tokens: t.tokens, room };
        return this.#ended(
          End.EPISODE_END_CONTEXT_EXHAUSTED,
          `no room to sample: prompt ${t.tokens.length}, model ${t.maxModelLen}`,
        );
      }
      if (first >= this.#cells.length)
        return this.#ended(
          End.EPISODE_END_CONTEXT_EXHAUSTED,
          `the prompt needs ${t.tokens.length} tokens with no cells left to drop (budget ${s.budget})`,
        );
      first++;
    }
  }

  /** The model's turn, kept exactly as sampled, then its cell (or format error) as the observation. */
  async #turn(prompt: number[], room: number): Promise<Ended | null> {
    const t0 = performance.now();
    const c = await this.deps.engine.complete(
      {
        model: this.s.model,
        prompt,
        maxTokens: room,
        temperature: this.s.temperature,
        topP: this.s.topP,
        stop: [CODE_CLOSE],
      },
      this.ctl.signal,
    );
    const { metrics } = this.deps;
    metrics.llmTokens.inc({ kind: "prompt" }, prompt.length);
    metrics.llmTokens.inc({ kind: "completion" }, c.tokenIds.length);
    if (c.policyVersion !== null)
      this.#policyVersion = Math.min(this.#policyVersion ?? c.policyVersion, c.policyVersion);
    const stoppedAtClose =
      c.stopReason === CODE_CLOSE || (c.stopReason === null && c.finishReason === "stop");
    const parsed = parseTurn(c.text, stoppedAtClose);
    const t: l0.v1.ITurn = {
      promptTokenIds: prompt,
      responseTokenIds: c.tokenIds,
      responseLogprobs: c.logprobs,
      responseText: c.text,
      llmSeconds: (performance.now() - t0) / 1000,
    };
    let observation = "";
    if (!parsed.ok) {
      observation = `Format error: ${parsed.error}`;
      Object.assign(t, { formatOk: false, code: "", outcome: Exec.EXEC_OUTCOME_NOT_RUN, execSeconds: 0 });
    } else {
      const cell = await this.#cell(t, parsed.code);
      if ("end" in cell) return cell;
      observation = cell.observation;
    }
    t.observation = observation;
    this.#turns.push(t);
    this.#cells.push({
      response: stoppedAtClose && parsed.ok ? c.text + CODE_CLOSE : c.text,
      observation,
      tokens: c.tokenIds.length + estimateTokens(observation) + 8,
    });
    this.ctl.onTurn?.(this.#turns.length);
    return null;
  }

  /** Runs the cell; a dead kernel is replaced (and counted) or ends the episode. */
  async #cell(t: l0.v1.ITurn, code: string): Promise<{ observation: string } | Ended> {
    const left = this.#deadline - Date.now();
    const r = await this.#kernel!.execute(code, {
      timeoutMs: Math.max(100, Math.min(this.s.cellMs, left)),
      onTool: (name, arg) => this.#tool(name, arg),
    });
    if (this.ctl.signal.aborted) return this.#ended(End.EPISODE_END_WORKER_SHUTDOWN, SHUTDOWN);
    this.deps.metrics.cell.observe({ outcome: r.outcome }, r.seconds);
    const obs = renderObservation(r, this.deps.observationChars);
    if (r.notepad) this.#notepad = r.notepad;
    // An answer counts only from a kernel that is still there to confirm it (#answered).
    if (r.finalAnswer !== null && r.kernelAlive) this.#finalAnswer = r.finalAnswer;
    Object.assign(t, {
      formatOk: true,
      code,
      outcome: EXEC_OF[r.outcome],
      execSeconds: r.seconds,
      observationTruncatedBytes: obs.cut,
    });
    this.#kernelTurns.push(t);
    if (r.kernelAlive) return { observation: obs.text };
    this.log.info("kernel died in a cell", { detail: r.detail, restarts: this.#restarts });
    await this.deps.kernels.discard(this.#kernel!);
    this.#kernel = null;
    const end = (e: l0.v1.EpisodeEnd, detail: string): Ended => {
      t.observation = obs.text;
      this.#turns.push(t);
      return this.#ended(e, detail);
    };
    // Only hostile code breaks the protocol (kernel.py never does): the episode ends there, and
    // nothing that kernel reported earns an execution outcome.
    if (r.violation) {
      this.#void();
      return end(
        End.EPISODE_END_AGENT_ERROR,
        `the agent's code broke its kernel's channel protocol: ${r.detail}`,
      );
    }
    if (++this.#restarts > (this.deps.maxKernelRestarts ?? 3))
      return end(
        End.EPISODE_END_AGENT_ERROR,
        `the agent's code killed its kernel ${this.#restarts} times (last: ${r.detail})`,
      );
    const err = await this.#newKernel();
    if (err) return end(End.EPISODE_END_SANDBOX_FAILURE, err);
    return { observation: obs.text };
  }

  /**
   * The final answer rides on a kernel's result, so before it counts the kernel must answer one
   * more, empty request at once and cleanly: a cell that forged its result while it kept running
   * (its real result still on the way) breaks the protocol here instead of scoring.
   */
  async #answered(): Promise<l0.v1.ITrajectory> {
    const r = await this.#kernel!.execute("", {
      timeoutMs: this.s.cellMs,
      onTool: () => Promise.reject(new Error("no tool calls while the answer is confirmed")),
    });
    if (this.ctl.signal.aborted) return this.#finish(End.EPISODE_END_WORKER_SHUTDOWN, SHUTDOWN);
    if (r.outcome === "ok" && r.kernelAlive) return this.#finish(End.EPISODE_END_ANSWERED, "");
    this.#void();
    return this.#finish(
      End.EPISODE_END_AGENT_ERROR,
      `the kernel did not confirm its final answer cleanly (${r.detail || r.outcome})`,
    );
  }

  /** What the current kernel reported is void: no execution outcome, no final answer. */
  #void(): void {
    for (const v of this.#kernelTurns) v.outcome = Exec.EXEC_OUTCOME_KILLED;
    this.#finalAnswer = null;
  }

  async #newKernel(): Promise<string | null> {
    try {
      this.#kernel = await this.deps.kernels.acquire();
      this.#kernelTurns = [];
      this.#kernel.init(this.s.tools, this.#notepad, this.deps.observationChars, this.task.prompt ?? "");
      return null;
    } catch (err) {
      return `no kernel could be started: ${(err as Error).message}`;
    }
  }

  async #tool(name: string, arg: string): Promise<string> {
    const { deps } = this;
    try {
      if (name !== "search" && name !== "read") throw new Error(`unknown tool ${name}`);
      if (!this.s.tools.includes(name)) throw new Error(`${name} is not enabled for this task`);
      const out = await (name === "search" ? deps.tools.search(arg) : deps.tools.read(arg));
      deps.metrics.toolCalls.inc({ tool: toolLabel(name), result: "ok" });
      return out;
    } catch (err) {
      deps.metrics.toolCalls.inc({ tool: toolLabel(name), result: "error" });
      throw err;
    }
  }

  #failure(err: unknown): l0.v1.ITrajectory {
    if (this.ctl.signal.aborted) return this.#finish(End.EPISODE_END_WORKER_SHUTDOWN, SHUTDOWN);
    if (err instanceof EngineError) {
      // Before the first turn the prompt is the task alone: a refusal then is not the agent's.
      if (err.promptRejected && this.#turns.length > 0)
        return this.#finish(
          End.EPISODE_END_AGENT_ERROR,
          `the engine refused a prompt holding the agent's own output: ${err.message}`,
        );
      return this.#finish(End.EPISODE_END_ENGINE_FAILURE, err.message);
    }
    this.log.error("episode failed unexpectedly", { error: (err as Error).message });
    return this.#finish(End.EPISODE_END_SANDBOX_FAILURE, `worker error: ${(err as Error).message}`);
  }

  #ended(end: l0.v1.EpisodeEnd, detail: string): Ended {
    return { end: this.#finish(end, detail) };
  }

  #finish(end: l0.v1.EpisodeEnd, detail: string): l0.v1.ITrajectory {
    const { task, deps } = this;
    const turns = this.#turns;
    return {
      trajectoryId: task.leaseId,
      taskId: task.taskId,
      leaseId: task.leaseId,
      workerId: deps.workerId,
      policyVersion: this.#policyVersion ?? Number(task.policyVersion ?? 0),
      turns,
      hasFinalAnswer: this.#finalAnswer !== null,
      finalAnswer: this.#finalAnswer ?? "",
      end,
      endDetail: detail,
      startedUnixMs: this.#started,
      durationSeconds: (Date.now() - this.#started) / 1000,
      promptTokens: turns.reduce((a, t) => a + (t.promptTokenIds?.length ?? 0), 0),
      completionTokens: turns.reduce((a, t) => a + (t.responseTokenIds?.length ?? 0), 0),
    };
  }
}
