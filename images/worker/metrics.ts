// The worker's Prometheus metrics, registered on an injected registry. Labels are bounded:
// outcomes and tools come from fixed lists.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export interface WorkerMetrics {
  episodesActive: Gauge;
  episodes: Counter<"outcome">;
  sandboxStart: Histogram;
  cell: Histogram<"outcome">;
  llmRequest: Histogram<"endpoint" | "result">;
  llmTokens: Counter<"kind">;
  toolCalls: Counter<"tool" | "result">;
  leaseErrors: Counter<"call">;
}

const KNOWN_TOOLS = new Set(["search", "read"]);
export const toolLabel = (name: string): string => (KNOWN_TOOLS.has(name) ? name : "unknown");

export function createWorkerMetrics(registry: Registry): WorkerMetrics {
  const registers = [registry];
  return {
    episodesActive: new Gauge({
      name: "l0_worker_episodes_active",
      help: "Episodes this worker is running now (read for pod-deletion-cost on scale-down).",
      registers,
    }),
    episodes: new Counter({
      name: "l0_episodes_total",
      help: "Episodes finished by this worker, by how they ended.",
      labelNames: ["outcome"],
      registers,
    }),
    sandboxStart: new Histogram({
      name: "l0_sandbox_start_seconds",
      help: "Time from spawning a sandboxed kernel to its ready frame.",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    cell: new Histogram({
      name: "l0_cell_seconds",
      help: "Wall time of one code cell in the kernel, by outcome.",
      labelNames: ["outcome"],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2, 10, 30, 120],
      registers,
    }),
    llmRequest: new Histogram({
      name: "l0_llm_request_seconds",
      help: "Engine HTTP request latency, by endpoint and result.",
      labelNames: ["endpoint", "result"],
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    llmTokens: new Counter({
      name: "l0_llm_tokens_total",
      help: "Tokens sent to (prompt) and sampled from (completion) the engine.",
      labelNames: ["kind"],
      registers,
    }),
    toolCalls: new Counter({
      name: "l0_tool_calls_total",
      help: "Tool calls proxied for kernels, by tool and result.",
      labelNames: ["tool", "result"],
      registers,
    }),
    leaseErrors: new Counter({
      name: "l0_worker_hub_errors_total",
      help: "Failed calls to the rollout hub, by call.",
      labelNames: ["call"],
      registers,
    }),
  };
}
