// `l0 weights` configuration: flags and L0_WEIGHTS_* variables (lib/config.ts).
import { LOG_CONFIG, TLS_CONFIG, defineConfig } from "../../../lib/config.js";

export const WEIGHTS_ENV_PREFIX = "L0_WEIGHTS_";

export const WEIGHTS_CONFIG = defineConfig({
  dir: { type: "string", required: true, description: "Directory of exported versions (<dir>/<version>/)" },
  tokenFile: {
    type: "string",
    required: true,
    description: "File holding the run token (never the token itself)",
  },
  host: { type: "string", default: "0.0.0.0", description: "Address the gRPC and metrics servers bind" },
  port: {
    type: "int",
    default: 7071,
    min: 0,
    max: 65535,
    description: "Weights gRPC port (0 = any free port)",
  },
  bulkPort: {
    type: "int",
    default: 7073,
    min: 0,
    max: 65535,
    description:
      "Weights bulk port: the same shard bytes as Pull over a bare (or, with --tls-dir, mutual-TLS) socket (0 = any free port)",
  },
  metricsPort: {
    type: "int",
    default: 9091,
    min: 0,
    max: 65535,
    description: "/metrics, /healthz, /readyz port",
  },
  pollInterval: {
    type: "duration",
    default: "1s",
    description: "How often the directory is scanned for new versions",
  },
  keep: { type: "int", default: 2, min: 1, max: 1000, description: "Newest versions always kept on disk" },
  fanout: {
    type: "int",
    default: 2,
    min: 0,
    max: 64,
    description: "Peers each sidecar feeds in the fan-out tree (0 = all pull from the service)",
  },
  ...TLS_CONFIG,
  ...LOG_CONFIG,
});
