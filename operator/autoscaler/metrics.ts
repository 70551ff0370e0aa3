// The autoscaler's Prometheus metrics, on an injected registry. Labels stay bounded: pools are
// objects the operator manages, direction has three values, reason is the fixed REASONS set.
import { Counter, Gauge, type Registry } from "prom-client";
import { type Direction, type Reason } from "./decide.js";

export interface AutoscalerMetrics {
  decided(
    pool: { namespace: string; name: string },
    replicas: number,
    direction: Direction,
    reason: Reason,
  ): void;
  backlog(pool: { namespace: string; name: string }, backlog: number): void;
  forget(pool: { namespace: string; name: string }): void;
}

export function autoscalerMetrics(registry: Registry): AutoscalerMetrics {
  const desired = new Gauge({
    name: "l0_autoscaler_desired_replicas",
    help: "Worker replicas the autoscaler last recommended for a pool.",
    labelNames: ["namespace", "pool"],
    registers: [registry],
  });
  const backlog = new Gauge({
    name: "l0_autoscaler_backlog",
    help: "Backlog (queued + leased episodes, smoothed or step peak) the last decision used.",
    labelNames: ["namespace", "pool"],
    registers: [registry],
  });
  const decisions = new Counter({
    name: "l0_autoscaler_decisions_total",
    help: "Autoscaler decisions by direction (up, down, none) and reason.",
    labelNames: ["direction", "reason"],
    registers: [registry],
  });
  return {
    decided: (pool, replicas, direction, reason) => {
      desired.set({ namespace: pool.namespace, pool: pool.name }, replicas);
      decisions.inc({ direction, reason });
    },
    backlog: (pool, value) => backlog.set({ namespace: pool.namespace, pool: pool.name }, value),
    forget: (pool) => {
      desired.remove({ namespace: pool.namespace, pool: pool.name });
      backlog.remove({ namespace: pool.namespace, pool: pool.name });
    },
  };
}
