// What an episode needs from the worker (kernels, engine, tools, metrics) and how the worker
// steers it (abort, progress). Shared by runEpisode and the steps it runs.
import { type Logger } from "../../../lib/log.js";
import { type EngineClient } from "../engine.js";
import { type WorkerMetrics } from "../metrics.js";
import { type Kernel } from "../sandbox/kernel.js";
import { type ToolBackend } from "../tools.js";

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
