// One NB-Agent episode: prompt -> engine turn -> parse -> run the cell in the episode's own
// kernel -> observation, until an answer, max turns, the context or the clock runs out.
// Returns the trajectory (token in, token out); infrastructure failures are ends with reasons.
import { type l0 } from "../../../lib/proto.js";
import { EpisodeRun } from "./episode-run.js";
import { agentLimits } from "./settings.js";
import { type EpisodeControl, type EpisodeDeps } from "./types.js";

export type { EpisodeControl, EpisodeDeps, KernelSource } from "./types.js";

/**
 * Runs one leased task. Throws (InvalidArgument, naming the field) only when the task's agent
 * settings are incomplete, a hub bug: the worker logs it and hands the lease back.
 */
export async function runEpisode(
  task: l0.v1.ITask,
  deps: EpisodeDeps,
  ctl: EpisodeControl,
): Promise<l0.v1.ITrajectory> {
  const agent = agentLimits(task.agent);
  const log = deps.logger.child({ episode: task.taskId, lease: task.leaseId });
  return new EpisodeRun(
    task,
    deps,
    ctl,
    {
      tools: agent.tools.filter((t) => ["search", "read", "notepad"].includes(t)),
      maxTurns: agent.maxTurns,
      maxTokens: agent.maxTokensPerTurn,
      budget: agent.contextBudget,
      cellMs: agent.cellTimeoutMs,
      episodeMs: Math.min(agent.episodeTimeoutMs, deps.maxEpisodeSeconds * 1000),
      model: agent.model,
      temperature: agent.temperature,
      topP: agent.topP,
    },
    log,
  ).run();
}
