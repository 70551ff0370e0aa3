// `l0 hub` configuration: flags and L0_HUB_* variables (lib/config.ts). The run itself
// (dataset, algorithm, reward, agent) comes from the TrainingRun file, not from flags.
import { LOG_CONFIG, TLS_CONFIG, defineConfig } from "../../../lib/config.js";

export const HUB_ENV_PREFIX = "L0_HUB_";

/** Lease and retry settings of the hub; `l0 trainer`, which runs the hub in-process, takes them too. */
export const HUB_LEASE_CONFIG = defineConfig({
  leaseTimeout: { type: "duration", default: "60s", description: "Lease lifetime without a heartbeat" },
  maxAttempts: {
    type: "int",
    default: 3,
    min: 1,
    max: 100,
    description: "Failed attempts of an episode before its group is dropped",
  },
  retryBackoff: {
    type: "duration",
    default: "1s",
    description: "Backoff before the first retry (doubles per retry)",
  },
  retryBackoffMax: { type: "duration", default: "30s", description: "Cap on the retry backoff" },
});

export const HUB_CONFIG = defineConfig({
  runConfig: {
    type: "string",
    required: true,
    description: "TrainingRun file (YAML/JSON), e.g. the mounted run.json",
  },
  tokenFile: {
    type: "string",
    required: true,
    description: "File holding the run token (never pass the token itself)",
  },
  host: { type: "string", default: "0.0.0.0", description: "Address the gRPC and metrics servers bind" },
  port: {
    type: "int",
    default: 7070,
    min: 0,
    max: 65535,
    description: "Rollout gRPC port (0 = any free port)",
  },
  metricsPort: {
    type: "int",
    default: 9090,
    min: 0,
    max: 65535,
    description: "/metrics, /healthz, /readyz port",
  },
  stateDir: {
    type: "string",
    default: "",
    description: "Directory of the hub checkpoint (hub-state.json); empty = no checkpoints",
  },
  ...HUB_LEASE_CONFIG,
  maxMessageBytes: {
    type: "int",
    default: 16 * 1024 * 1024,
    min: 1024,
    description: "Largest gRPC message accepted or sent",
  },
  drive: {
    type: "enum",
    values: ["standalone", "none"] as const,
    default: "standalone",
    description:
      "standalone: step through batches without a learner; none: serve tasks only, steps driven elsewhere",
  },
  ...LOG_CONFIG,
  ...TLS_CONFIG,
});
