// The controller metrics (STYLE.md habit 11), on an injected registry, with bounded labels:
// controller is one of two names; result is one of five words.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export type ReconcileResult = "success" | "requeue" | "conflict" | "error" | "terminal";

export class ControllerMetrics {
  readonly reconciles: Counter<"controller" | "result">;
  readonly duration: Histogram<"controller">;
  readonly depth: Gauge<"controller">;
  readonly retries: Counter<"controller">;
  readonly leader: Gauge;

  constructor(registry: Registry) {
    this.reconciles = new Counter({
      name: "l0_reconcile_total",
      help: "Reconciles by controller and result (success, requeue, conflict, error, terminal).",
      labelNames: ["controller", "result"],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: "l0_reconcile_duration_seconds",
      help: "Time of one reconcile, seconds.",
      labelNames: ["controller"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
      registers: [registry],
    });
    this.depth = new Gauge({
      name: "l0_workqueue_depth",
      help: "Keys waiting in the controller's work queue.",
      labelNames: ["controller"],
      registers: [registry],
    });
    this.retries = new Counter({
      name: "l0_workqueue_retries_total",
      help: "Keys re-queued with backoff after a failed or conflicting reconcile.",
      labelNames: ["controller"],
      registers: [registry],
    });
    this.leader = new Gauge({
      name: "l0_operator_leader",
      help: "1 while this replica holds the leader lease.",
      registers: [registry],
    });
  }
}
