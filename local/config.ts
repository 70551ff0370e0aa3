// `l0 local` configuration: flags and L0_LOCAL_* variables. Everything about the run itself
// comes from the TrainingRun file (-f); these only say where and how to run it on this machine.
import { defineConfig } from "../lib/config.js";

export const LOCAL_ENV_PREFIX = "L0_LOCAL_";

export const LOCAL_CONFIG = defineConfig({
  runDir: {
    type: "string",
    default: "",
    description: "Run directory: logs, token, checkpoints, summary, plot (default runs/<metadata.name>)",
  },
  workers: {
    type: "int",
    default: 0,
    min: 0,
    max: 64,
    description: "Worker processes (0 = spec.workers.replicas)",
  },
  fresh: {
    type: "bool",
    default: false,
    description: "Start over: ignore a checkpoint in the run directory",
  },
  sftDemos: {
    type: "int",
    default: 450,
    min: 0,
    max: 100_000,
    description: "Warm-start demonstrations generated from the train split (0 = no warm start)",
  },
  sftEpochs: {
    type: "int",
    default: 1,
    min: 1,
    max: 100,
    description: "Warm-start passes over the demonstrations",
  },
  sftBatchSize: {
    type: "int",
    default: 8,
    min: 1,
    max: 1024,
    description: "Warm-start demonstrations per step",
  },
  sftLearningRate: { type: "number", default: 2e-3, min: 0, max: 1, description: "Warm-start learning rate" },
  sandboxMode: {
    type: "enum",
    values: ["strict", "weak"] as const,
    default: "strict",
    description: "Worker sandbox mode (weak where no pids cgroup is writable)",
  },
  progress: {
    type: "enum",
    values: ["auto", "line", "plain", "off"] as const,
    default: "auto",
    description: "Progress display: a live line on a terminal, plain lines otherwise",
  },
});
