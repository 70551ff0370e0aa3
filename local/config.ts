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
  sandboxMode: {
    type: "enum",
    values: ["auto", "strict", "weak"] as const,
    default: "auto",
    description:
      "Worker sandbox mode: auto = strict where a pids cgroup is writable (root), else weak (bwrap in a user namespace, rlimits; what it cannot enforce is printed)",
  },
  judgeKeyFile: {
    type: "string",
    default: "",
    description:
      "File holding the API key of spec.evaluation.judge, which a cluster reads from its secretRef (required when the run names one)",
  },
  output: {
    type: "enum",
    values: ["table", "json", "yaml"] as const,
    default: "table",
    description: "The summary at the end: a table, or the object as JSON or YAML",
  },
  progress: {
    type: "enum",
    values: ["auto", "line", "plain", "off"] as const,
    default: "auto",
    description: "Progress display: a live line on a terminal, plain lines otherwise",
  },
});
