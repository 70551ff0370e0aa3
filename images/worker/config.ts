// `l0 worker` configuration: flags and L0_WORKER_* variables (lib/config.ts). Sandbox limits
// mirror the AgentWorkerPool's spec.sandbox fields, which the operator passes as these flags.
import { LOG_CONFIG, TLS_CONFIG, defineConfig } from "../../lib/config.js";

export const WORKER_ENV_PREFIX = "L0_WORKER_";

export const WORKER_CONFIG = defineConfig({
  hub: { type: "string", required: true, description: "Rollout hub address, host:port" },
  tokenFile: {
    type: "string",
    required: true,
    description: "File holding the run token (never pass the token itself)",
  },
  engineUrl: {
    type: "string",
    required: true,
    pattern: /^https?:\/\//,
    description: "Base URL of the OpenAI-compatible engine (docs/engine-api.md)",
  },
  runConfig: {
    type: "string",
    default: "",
    description: "TrainingRun file (the mounted run.json); validated, and names the run in every log line",
  },
  workerId: { type: "string", default: "", description: "Worker id sent to the hub (default: host name)" },
  episodes: { type: "int", default: 4, min: 1, max: 1024, description: "K: episodes run concurrently" },
  warmKernels: {
    type: "int",
    default: 0,
    min: 0,
    max: 1024,
    description: "Kernels kept started ahead of need (0 = as many as --episodes)",
  },
  host: { type: "string", default: "0.0.0.0", description: "Address of the metrics/probe server" },
  metricsPort: {
    type: "int",
    default: 9100,
    min: 0,
    max: 65535,
    description: "/metrics, /healthz, /readyz, /episodes port",
  },
  grace: {
    type: "duration",
    default: "30s",
    description: "On SIGTERM: time to finish running episodes before releasing the rest",
  },
  heartbeat: {
    type: "duration",
    default: "10s",
    description: "Lease heartbeat period (sooner near a deadline)",
  },
  leaseWait: { type: "duration", default: "5s", description: "Lease long-poll wait" },
  hubTimeout: { type: "duration", default: "10s", description: "Deadline of each hub call" },
  reconnectBackoff: { type: "duration", default: "500ms", description: "First reconnect delay (doubles)" },
  reconnectBackoffMax: { type: "duration", default: "30s", description: "Cap on the reconnect delay" },
  submitAttempts: { type: "int", default: 8, min: 1, max: 100, description: "Attempts per Submit" },
  engineTimeout: { type: "duration", default: "120s", description: "Deadline of one engine request" },
  engineAttempts: { type: "int", default: 3, min: 1, max: 20, description: "Attempts per engine request" },
  engineConcurrency: {
    type: "int",
    default: 64,
    min: 1,
    max: 4096,
    description: "Engine requests in flight from this worker",
  },
  observationChars: {
    type: "int",
    default: 4000,
    min: 256,
    max: 1_000_000,
    description: "Characters of cell output the model sees per observation",
  },
  sandboxMode: {
    type: "enum",
    values: ["strict", "weak"] as const,
    default: "strict",
    description:
      "strict: fail unless bwrap and a pids cgroup are available; weak: rlimits only, logged loudly at start",
  },
  cpuSeconds: {
    type: "int",
    default: 60,
    min: 1,
    max: 86_400,
    description: "CPU seconds per episode kernel",
  },
  memoryMib: {
    type: "int",
    default: 1024,
    min: 64,
    max: 65_536,
    description: "Address space per kernel, MiB",
  },
  maxProcesses: { type: "int", default: 64, min: 1, max: 4096, description: "Processes per kernel" },
  diskMib: { type: "int", default: 256, min: 1, max: 65_536, description: "Private tmpfs per kernel, MiB" },
  fileSizeMib: {
    type: "int",
    default: 64,
    min: 1,
    max: 65_536,
    description: "Largest file a kernel may write, MiB",
  },
  openFiles: { type: "int", default: 256, min: 16, max: 65_536, description: "Open files per kernel" },
  memoryHeadroomMib: {
    type: "int",
    default: 256,
    min: 0,
    max: 65_536,
    description:
      "Kill the kernel using the most memory when the container's working set comes this close to its limit (0 = off)",
  },
  wallSeconds: {
    type: "int",
    default: 300,
    min: 1,
    max: 86_400,
    description: "Wall-clock cap of one episode (the task may ask for less)",
  },
  uidBase: {
    type: "int",
    default: 100_000,
    min: 1000,
    description: "First uid kernels run as when the worker is root (one uid per kernel)",
  },
  uidRange: { type: "int", default: 10_000, min: 1, description: "Number of kernel uids to rotate through" },
  searchBackend: {
    type: "enum",
    values: ["none", "local", "http"] as const,
    default: "none",
    description: "Backend of the search/read tools: a JSONL corpus (local) or a Serper-compatible API (http)",
  },
  searchCorpus: { type: "string", default: "", description: "JSONL corpus for --search-backend local" },
  searchUrl: {
    type: "string",
    default: "",
    description: "Base URL of the search API for --search-backend http",
  },
  searchKeyFile: {
    type: "string",
    default: "",
    description: "File holding the search API key (stays in the worker, never in the sandbox)",
  },
  ...LOG_CONFIG,
  ...TLS_CONFIG,
});
