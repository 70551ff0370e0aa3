// `l0 sidecar` configuration: flags and L0_SIDECAR_* variables (lib/config.ts).
import { LOG_CONFIG, TLS_CONFIG, defineConfig } from "../../lib/config.js";
import { ENGINE_KINDS } from "./engines.js";
import { TRANSPORTS } from "./puller.js";

export const SIDECAR_ENV_PREFIX = "L0_SIDECAR_";

export const SIDECAR_CONFIG = defineConfig({
  weightsAddress: { type: "string", required: true, description: "host:port of the weight service" },
  tokenFile: {
    type: "string",
    required: true,
    description: "File holding the run token (never the token itself)",
  },
  root: {
    type: "string",
    required: true,
    description: "Volume shared with the engine: staging/, versions/<v>/ and the `current` link",
  },
  engine: { type: "enum", values: ENGINE_KINDS, default: "sglang", description: "Engine to reload" },
  engineUrl: { type: "string", default: "http://127.0.0.1:30000", description: "Base URL of the engine" },
  engineApiKeyFile: { type: "string", default: "", description: "File with the engine's --api-key, if any" },
  engineTimeout: { type: "duration", default: "10m", description: "Deadline of one engine load" },
  engineWait: {
    type: "duration",
    default: "120s",
    description: "How long a load waits for an engine that refuses connections (starting or restarting)",
  },
  engineId: { type: "string", default: "", description: "This engine's id (default: the host name)" },
  baseModelDir: {
    type: "string",
    default: "",
    description: "Model dir whose non-weight files (config.json, tokenizer) are copied into each version",
  },
  host: { type: "string", default: "0.0.0.0", description: "Address the peer and metrics servers bind" },
  peerPort: { type: "int", default: 7072, min: 0, max: 65535, description: "Port serving Pull to peers" },
  peerBulkPort: {
    type: "int",
    default: 7074,
    min: 0,
    max: 65535,
    description:
      "Port serving peers the same bytes as Pull over the bulk channel (bare or mutual-TLS socket)",
  },
  transport: {
    type: "enum",
    values: TRANSPORTS,
    default: "auto",
    description:
      "How shard bytes travel: auto = the bulk channel where the source advertises one, else gRPC Pull; grpc; bulk (fails where none)",
  },
  peerAddress: {
    type: "string",
    default: "",
    description: "host:port peers reach this sidecar at (default $POD_IP:peer-port; none = serve no peers)",
  },
  metricsPort: {
    type: "int",
    default: 9092,
    min: 0,
    max: 65535,
    description: "/metrics, /healthz, /readyz port",
  },
  pullStreams: {
    type: "int",
    default: 0,
    min: 0,
    max: 64,
    description: "Shards of a version pulled at once, one Pull stream each (0 = one per CPU core, at most 8)",
  },
  hashThreads: {
    type: "int",
    default: 0,
    min: 0,
    max: 64,
    description:
      "Worker threads that verify (sha256) and write received chunks (0 = one per CPU core, at most 8)",
  },
  reportInterval: {
    type: "duration",
    default: "5s",
    description: "How often the served version is reported",
  },
  ...LOG_CONFIG,
  ...TLS_CONFIG,
});
