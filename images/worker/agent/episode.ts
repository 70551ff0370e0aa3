// One NB-Agent episode: prompt -> engine turn -> parse -> run the cell in the episode's own
// kernel -> observation, until an answer, max turns, the context or the clock runs out.
// Returns the trajectory (token in, token out); infrastructure failures are ends with reasons.
import { type Logger } from "../../../lib/log.js";
import { l0 } from "../../../lib/proto.js";
import { EngineError, type EngineClient } from "../engine.js";
import { type WorkerMetrics, toolLabel } from "../metrics.js";
import { type Notepad } from "../sandbox/framing.js";
import { type CellResult, type Kernel } from "../sandbox/kernel.js";
import { type ToolBackend } from "../tools.js";
import { CODE_CLOSE, parseTurn } from "./format.js";
import { agentLimits } from "./settings.js";
import {
  type Cell,
  buildMessages,
  estimateTokens,
  firstKeptCell,
  renderNotepad,
  renderObservation,
  systemPrompt,
} from "./notebook.js";

const End = l0.v1.EpisodeEnd;
const Exec = l0.v1.ExecOutcome;

export interface KernelSource {
  acquire(): Promise<Kernel>;
  discard(k: Kernel): Promise<void>;
}

export interface EpisodeDeps {
  kernels: KernelSource;
  engine: EngineClient;
  tools: ToolBackend;
  metrics: WorkerMetrics;
  logger: Logger;
  workerId: string;
  /** Characters of cell output the model sees per observation. */
  observationChars: number;
  /** The pool's cap on an episode's wall time, seconds (the task may ask for less). */
  maxEpisodeSeconds: number;
  /** Kernel restarts an episode may cause (fork bombs, OOM) before it ends as an agent error. */
  maxKernelRestarts?: number;
}

export interface EpisodeControl {
  /** Aborted when the lease is lost or the drain deadline passes: stop at once. */
  signal: AbortSignal;
  onTurn?: (turns: number) => void;
}

const EXEC_OF: Record<CellResult["outcome"], l0.v1.ExecOutcome> = {
  ok: Exec.EXEC_OUTCOME_OK,
  error: Exec.EXEC_OUTCOME_ERROR,
  timeout: Exec.EXEC_OUTCOME_TIMEOUT,
  killed: Exec.EXEC_OUTCOME_KILLED,
};

export async function runEpisode(
  task: l0.v1.ITask,
  deps: EpisodeDeps,
  ctl: EpisodeControl,
): Promise<l0.v1.ITrajectory> {
  const agent = agentLimits(task.agent);
  const tools = agent.tools.filter((t) => ["search", "read", "notepad"].includes(t));
  const maxTurns = agent.maxTurns;
  const maxTokens = agent.maxTokensPerTurn;
  const budget = agent.contextBudget;
  const cellMs = agent.cellTimeoutMs;
  const episodeMs = Math.min(agent.episodeTimeoutMs, deps.maxEpisodeSeconds * 1000);
  const log = deps.logger.child({ episode: task.taskId, lease: task.leaseId });
  const started = Date.now();
  const deadline = started + episodeMs;
  const turns: l0.v1.ITurn[] = [];
  const cells: Cell[] = [];
  let notepad: Notepad | null = null;
  let policyVersion: number | null = null;
  let finalAnswer: string | null = null;
  let restarts = 0;
  let kernel: Kernel | null = null;
  const onAbort = (): void => void kernel?.kill();
  ctl.signal.addEventListener("abort", onAbort);

  const finish = (end: l0.v1.EpisodeEnd, detail: string): l0.v1.ITrajectory => {
    const promptTokens = turns.reduce((a, t) => a + (t.promptTokenIds?.length ?? 0), 0);
    const completionTokens = turns.reduce((a, t) => a + (t.responseTokenIds?.length ?? 0), 0);
    return {
      trajectoryId: task.leaseId,
      taskId: task.taskId,
      leaseId: task.leaseId,
      workerId: deps.workerId,
      policyVersion: policyVersion ?? Number(task.policyVersion ?? 0),
      turns,
      hasFinalAnswer: finalAnswer !== null,
      finalAnswer: finalAnswer ?? "",
      end,
      endDetail: detail,
      startedUnixMs: started,
      durationSeconds: (Date.now() - started) / 1000,
      promptTokens,
      completionTokens,
    };
  };

  const newKernel = async (): Promise<string | null> => {
    try {
      kernel = await deps.kernels.acquire();
      kernel.init(tools, notepad, deps.observationChars, task.prompt ?? "");
      return null;
    } catch (err) {
      return `no kernel could be started: ${(err as Error).message}`;
    }
  };

  const onTool = async (name: string, arg: string): Promise<string> => {
    try {
      if (name !== "search" && name !== "read") throw new Error(`unknown tool ${name}`);
      if (!tools.includes(name)) throw new Error(`${name} is not enabled for this task`);
      const out = await (name === "search" ? deps.tools.search(arg) : deps.tools.read(arg));
      deps.metrics.toolCalls.inc({ tool: toolLabel(name), result: "ok" });
      return out;
    } catch (err) {
      deps.metrics.toolCalls.inc({ tool: toolLabel(name), result: "error" });
      throw err;
    }
  };

  try {
    const startErr = await newKernel();
    if (startErr) return finish(End.EPISODE_END_SANDBOX_FAILURE, startErr);
    for (let turn = 0; turn < maxTurns; turn++) {
      if (ctl.signal.aborted)
        return finish(End.EPISODE_END_WORKER_SHUTDOWN, "stopped: lease lost or worker draining");
      if (Date.now() >= deadline)
        return finish(
          End.EPISODE_END_AGENT_ERROR,
          `the episode passed its ${episodeMs / 1000} s wall-clock limit`,
        );

      // 1. The notebook, trimmed to the context budget (newest cells kept, notepad always).
      const fixed = estimateTokens(systemPrompt(tools) + (task.prompt ?? "") + renderNotepad(notepad));
      let first = firstKeptCell(cells, fixed, budget);
      let prompt: number[] = [];
      let maxModelLen = Number.MAX_SAFE_INTEGER;
      for (;;) {
        const messages = buildMessages({ tools, task: task.prompt ?? "", cells, firstKept: first, notepad });
        const t = await deps.engine.tokenize(agent.model, messages, ctl.signal);
        prompt = t.tokens;
        maxModelLen = t.maxModelLen;
        if (prompt.length <= budget) break;
        if (first >= cells.length)
          return finish(
            End.EPISODE_END_CONTEXT_EXHAUSTED,
            `the prompt needs ${prompt.length} tokens with no cells left to drop (budget ${budget})`,
          );
        first++;
      }
      const room = Math.min(maxTokens, maxModelLen - prompt.length);
      if (room <= 0)
        return finish(
          End.EPISODE_END_CONTEXT_EXHAUSTED,
          `no room to sample: prompt ${prompt.length}, model ${maxModelLen}`,
        );

      // 2. The model's turn, kept exactly as sampled.
      const t0 = performance.now();
      const c = await deps.engine.complete(
        {
          model: agent.model,
          prompt,
          maxTokens: room,
          temperature: agent.temperature,
          topP: agent.topP,
          stop: [CODE_CLOSE],
        },
        ctl.signal,
      );
      const llmSeconds = (performance.now() - t0) / 1000;
      deps.metrics.llmTokens.inc({ kind: "prompt" }, prompt.length);
      deps.metrics.llmTokens.inc({ kind: "completion" }, c.tokenIds.length);
      if (c.policyVersion !== null)
        policyVersion = Math.min(policyVersion ?? c.policyVersion, c.policyVersion);
      const stoppedAtClose =
        c.stopReason === CODE_CLOSE || (c.stopReason === null && c.finishReason === "stop");
      const parsed = parseTurn(c.text, stoppedAtClose);
      const shown = stoppedAtClose && parsed.ok ? c.text + CODE_CLOSE : c.text;

      // 3. The cell, or the format error as the observation.
      const t: l0.v1.ITurn = {
        promptTokenIds: prompt,
        responseTokenIds: c.tokenIds,
        responseLogprobs: c.logprobs,
        responseText: c.text,
        llmSeconds,
      };
      let observation: string;
      if (!parsed.ok) {
        observation = `Format error: ${parsed.error}`;
        Object.assign(t, { formatOk: false, code: "", outcome: Exec.EXEC_OUTCOME_NOT_RUN, execSeconds: 0 });
      } else {
        const left = deadline - Date.now();
        const r = await kernel!.execute(parsed.code, {
          timeoutMs: Math.max(100, Math.min(cellMs, left)),
          onTool,
        });
        if (ctl.signal.aborted)
          return finish(End.EPISODE_END_WORKER_SHUTDOWN, "stopped: lease lost or worker draining");
        deps.metrics.cell.observe({ outcome: r.outcome }, r.seconds);
        const obs = renderObservation(r, deps.observationChars);
        observation = obs.text;
        if (r.notepad) notepad = r.notepad;
        if (r.finalAnswer !== null) finalAnswer = r.finalAnswer;
        Object.assign(t, {
          formatOk: true,
          code: parsed.code,
          outcome: EXEC_OF[r.outcome],
          execSeconds: r.seconds,
          observationTruncatedBytes: obs.cut,
        });
        if (!r.kernelAlive) {
          log.info("kernel died in a cell", { detail: r.detail, restarts });
          await deps.kernels.discard(kernel!);
          kernel = null;
          if (++restarts > (deps.maxKernelRestarts ?? 3)) {
            t.observation = observation;
            turns.push(t);
            return finish(
              End.EPISODE_END_AGENT_ERROR,
              `the agent's code killed its kernel ${restarts} times (last: ${r.detail})`,
            );
          }
          const err = await newKernel();
          if (err) {
            t.observation = observation;
            turns.push(t);
            return finish(End.EPISODE_END_SANDBOX_FAILURE, err);
          }
        }
      }
      t.observation = observation;
      turns.push(t);
      cells.push({
        response: shown,
        observation,
        tokens: c.tokenIds.length + estimateTokens(observation) + 8,
      });
      ctl.onTurn?.(turns.length);
      if (finalAnswer !== null) return finish(End.EPISODE_END_ANSWERED, "");
    }
    return finish(End.EPISODE_END_MAX_TURNS, `no answer after ${maxTurns} turns`);
  } catch (err) {
    if (ctl.signal.aborted)
      return finish(End.EPISODE_END_WORKER_SHUTDOWN, "stopped: lease lost or worker draining");
    if (err instanceof EngineError) return finish(End.EPISODE_END_ENGINE_FAILURE, err.message);
    log.error("episode failed unexpectedly", { error: (err as Error).message });
    return finish(End.EPISODE_END_SANDBOX_FAILURE, `worker error: ${(err as Error).message}`);
  } finally {
    ctl.signal.removeEventListener("abort", onAbort);
    if (kernel) await deps.kernels.discard(kernel);
  }
}
