// Prometheus metrics of weight sync, shared by the weight service, the sidecar and peers, on an
// injected registry. One set per registry, so a test or `l0 local` running the service and
// sidecars in one process on one registry does not register twice.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export interface WeightsMetrics {
  /** role: "exported" (newest version the service offers) | "served" (what this sidecar's engine serves). */
  version: Gauge<"role">;
  /** direction: "sent" | "received". */
  bytes: Counter<"direction">;
  /** Sidecar: from a version's announcement to the engine serving it. */
  syncSeconds: Histogram;
  /** Chunks pulled again after a hash mismatch or a cut mid-chunk. */
  chunkRetries: Counter;
}

const perRegistry = new WeakMap<Registry, WeightsMetrics>();

export function weightsMetrics(registry: Registry): WeightsMetrics {
  const known = perRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const m: WeightsMetrics = {
    version: new Gauge({
      name: "l0_weights_version",
      help: "Policy version: the newest exported (role=exported) or the one the engine serves (role=served).",
      labelNames: ["role"],
      registers,
    }),
    bytes: new Counter({
      name: "l0_weights_bytes_total",
      help: "Weight bytes streamed, by direction (sent by the service or a peer, received by a sidecar).",
      labelNames: ["direction"],
      registers,
    }),
    syncSeconds: new Histogram({
      name: "l0_weights_sync_seconds",
      help: "Seconds from a version's announcement until the engine serves it (pull, verify, reload).",
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
    chunkRetries: new Counter({
      name: "l0_weights_chunk_retries_total",
      help: "Weight chunks pulled again after a hash mismatch or a broken stream.",
      registers,
    }),
  };
  perRegistry.set(registry, m);
  return m;
}
