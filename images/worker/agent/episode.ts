// One NB-Agent episode: prompt -> engine turn -> parse -> run the cell in the episode's own
// kernel -> observation, until an answer, max turns, the context or the clock runs out.
// Returns the trajectory (token in, token out); infrastructure failures are ends with reasons.
import { type l0 } from "../../../lib/proto.js";
import { EpisodeRun } from "./episode-run.js";
import { type EpisodeControl, type EpisodeDeps } from "./types.js";

export type { EpisodeControl, EpisodeDeps, KernelSource } from "./types.js";

export async function runEpisode(
  task: l0.v1.ITask,
  deps: EpisodeDeps,
  ctl: EpisodeControl,
): Promise<l0.v1.ITrajectory> {
  const agent = task.agent ?? {};
  const tools = (agent.tools ?? []).filter((t) => ["search", "read", "notepad"].includes(t));
  const maxTurns = agent.maxTurns || 8;
  const maxTokens = agent.maxTokensPerTurn || 512;
  const budget = agent.contextBudget || 8192;
  const cellMs = (agent.cellTimeoutSeconds || 10) * 1000;
  const episodeMs = Math.min(agent.episodeTimeoutSeconds || 300, deps.maxEpisodeSeconds) * 1000;
  const log = deps.logger.child({ episode: task.taskId, lease: task.leaseId });
  return new EpisodeRun(
    task,
    deps,
    ctl,
    { tools, maxTurns, maxTokens, budget, cellMs, episodeMs },
    log,
  ).run();
}
