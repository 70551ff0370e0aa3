// The ReplicaRecommender the AgentWorkerPool reconciler calls: reads the pool's config, polls
// its hub's Stats once (deadline, no retries), runs the pure decision, keeps per-pool state,
// and records metrics and a log line. Everything it decides comes from decide.ts.
import { type Registry } from "prom-client";
import { type AgentWorkerPool, type ResolvedAgentWorkerPool } from "../../gen/crds/index.js";
import { type Logger } from "../../lib/log.js";
import { type Recommendation, type ReplicaRecommender } from "./api.js";
import { autoscalingConfig } from "./config.js";
import { decide, initialPoolState, type Observation, type PoolState } from "./decide.js";
import { autoscalerMetrics, type AutoscalerMetrics } from "./metrics.js";
import { type HubTarget, type StatsSource } from "./stats-source.js";

export interface BacklogRecommenderOptions {
  source: StatsSource;
  /** The pool's hub address and run token (the operator reads its Service and Secret). */
  resolveHub: (pool: AgentWorkerPool) => Promise<HubTarget>;
  registry: Registry;
  logger: Logger;
}

export class BacklogRecommender implements ReplicaRecommender {
  readonly #states = new Map<string, PoolState>();
  /** Per pool, the reason it is held for (logged at warn when it starts). */
  readonly #held = new Map<string, string>();
  readonly #opts: BacklogRecommenderOptions;
  readonly #metrics: AutoscalerMetrics;

  constructor(opts: BacklogRecommenderOptions) {
    this.#opts = opts;
    this.#metrics = autoscalerMetrics(opts.registry);
  }

  async recommend(pool: ResolvedAgentWorkerPool, now: Date): Promise<Recommendation> {
    const namespace = pool.metadata?.namespace ?? "default";
    const name = pool.metadata?.name ?? "";
    const key = `${namespace}/${name}`;
    const current = pool.spec.replicas ?? 1;
    const cfg = autoscalingConfig(pool.spec);
    if (!cfg.enabled) return { replicas: current, reason: "Disabled", message: "autoscaling disabled" };

    let obs: Observation;
    try {
      const target = await this.#opts.resolveHub(pool);
      obs = { ok: true, sample: await this.#opts.source.read(target, now.getTime()) };
    } catch (err) {
      obs = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    const d = decide(cfg, this.#states.get(key) ?? initialPoolState(), current, obs, now.getTime());
    this.#states.set(key, d.state);

    this.#metrics.decided({ namespace, name }, d.replicas, d.direction, d.reason);
    if (d.backlog !== undefined) this.#metrics.backlog({ namespace, name }, d.backlog);
    const fields = {
      pool: key,
      from: current,
      to: d.replicas,
      reason: d.reason,
      backlog: d.backlog,
      detail: d.message,
    };
    // A hold is said once at warn when its reason starts (then at debug every poll), not every
    // 10 s; the message (failure counts, the hub's error) changes from poll to poll.
    const held = d.degraded?.reason;
    const heldBefore = this.#held.get(key);
    if (held) this.#held.set(key, held);
    else this.#held.delete(key);
    if (d.direction !== "none") this.#opts.logger.info("autoscaler scaling pool", fields);
    else if (held && held !== heldBefore) this.#opts.logger.warn("autoscaler holding pool", fields);
    else this.#opts.logger.debug("autoscaler decision", fields);
    return {
      replicas: d.replicas,
      reason: d.reason,
      message: d.message,
      backlog: d.backlog,
      degraded: d.degraded,
      requeueAfterMs: cfg.pollingIntervalSeconds * 1000,
    };
  }

  forget(namespace: string, name: string): void {
    this.#states.delete(`${namespace}/${name}`);
    this.#held.delete(`${namespace}/${name}`);
    this.#metrics.forget({ namespace, name });
  }
}
