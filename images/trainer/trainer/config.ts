// `l0 trainer` configuration: flags and L0_TRAINER_* variables (lib/config.ts), named after the
// env the operator gives the trainer Job (operator/trainingrun/build.ts). The run itself
// (dataset, algorithm, reward, agent, checkpoint) comes from the TrainingRun file.
import { LOG_CONFIG, TLS_CONFIG, defineConfig } from "../../../lib/config.js";
import { HUB_LEASE_CONFIG } from "../hub/config.js";

export const TRAINER_ENV_PREFIX = "L0_TRAINER_";

export const TRAINER_CONFIG = defineConfig({
  runConfig: { type: "string", required: true, description: "TrainingRun file (YAML/JSON), e.g. run.json" },
  tokenFile: {
    type: "string",
    required: true,
    description: "File holding the run token (never pass the token itself)",
  },
  judgeKeyFile: {
    type: "string",
    default: "",
    description:
      "File holding the API key of spec.evaluation.judge (required when the run names its secretRef)",
  },
  host: { type: "string", default: "0.0.0.0", description: "Address the hub gRPC and metrics servers bind" },
  hubPort: { type: "int", default: 7070, min: 0, max: 65535, description: "Rollout gRPC port (0 = free)" },
  metricsPort: {
    type: "int",
    default: 9090,
    min: 0,
    max: 65535,
    description: "/metrics, /healthz, /readyz port (0 = free)",
  },
  enginePort: {
    type: "int",
    default: -1,
    min: -1,
    max: 65535,
    description: "Port of the learner's colocated engine (0 = free, -1 = none: spec.inference serves)",
  },
  engineHost: {
    type: "string",
    default: "0.0.0.0",
    description: "Address the colocated engine binds (workers in other pods reach it)",
  },
  weightsPort: {
    type: "int",
    default: 7071,
    min: 0,
    max: 65535,
    description: "Weights gRPC port the inference sidecars pull from (with spec.inference; 0 = free)",
  },
  weightsBulkPort: {
    type: "int",
    default: 7073,
    min: 0,
    max: 65535,
    description:
      "Weights bulk port: the same shard bytes as Pull over a bare (or, with --tls-dir, mutual-TLS) socket (0 = free)",
  },
  exportDir: {
    type: "string",
    default: "",
    description:
      "Where the learner exports each policy version for the sidecars (with spec.inference); empty = <tmp>/l0-weights",
  },
  weightSyncTimeout: {
    type: "duration",
    default: "600s",
    description:
      "With spec.inference: how long a new version may take to be served by every engine before the run fails (WeightSyncTimeout)",
  },
  engineReportWait: {
    type: "duration",
    default: "7s",
    description:
      "With spec.inference, on a restart: how long to wait for the engines to report the versions they hold before numbering new ones above them",
  },
  checkpointDir: {
    type: "string",
    default: "",
    description: "Checkpoint directory (one sub-directory per saved step + `latest`); empty = none",
  },
  attempt: { type: "int", default: 0, min: 0, description: "Restart attempt of the trainer (logged)" },
  trajectoriesPerStep: {
    type: "int",
    default: 4,
    min: 0,
    max: 1000,
    description:
      "Trajectories per step written readably to trajectories.jsonl in the checkpoint directory (0 = none)",
  },
  ...HUB_LEASE_CONFIG,
  learnerReadyTimeout: {
    type: "duration",
    default: "600s",
    description:
      "How long the starting learner may go without a log line (model build, each warm-start progress line) before it counts as hung",
  },
  ...LOG_CONFIG,
  ...TLS_CONFIG,
});
