// Per-pool gauges the chart's alerts and dashboard read (docs/metrics.md), on an injected registry.
// Labels are bounded by the pools that exist: a pool's series go when the pool goes.
import { Gauge, type Registry } from "prom-client";

type Labels = "namespace" | "pool";

export class PoolMetrics {
  readonly #max: Gauge<Labels>;
  readonly #ready: Gauge<Labels>;

  constructor(registry: Registry) {
    this.#max = new Gauge({
      name: "l0_pool_max_replicas",
      help: "The pool's autoscaling.maxReplicas (only for pools with autoscaling enabled).",
      labelNames: ["namespace", "pool"],
      registers: [registry],
    });
    this.#ready = new Gauge({
      name: "l0_pool_ready_replicas",
      help: "Ready worker pods of the pool.",
      labelNames: ["namespace", "pool"],
      registers: [registry],
    });
  }

  /** `maxReplicas` undefined: the pool is not autoscaled, so it has no max series. */
  observe(namespace: string, pool: string, ready: number, maxReplicas: number | undefined): void {
    const l = { namespace, pool };
    this.#ready.set(l, ready);
    if (maxReplicas === undefined) this.#max.remove(l);
    else this.#max.set(l, maxReplicas);
  }

  forget(namespace: string, pool: string): void {
    this.#max.remove({ namespace, pool });
    this.#ready.remove({ namespace, pool });
  }
}
