// The hub's Prometheus metrics on an injected registry. Names are a contract (docs/metrics.md:
// dashboards and alerts read them); labels are bounded: `outcome` is an EpisodeEnd name or
// "lease_expired", `reason` an EpisodeEnd name, "lease_expired", "no_signal" or "stale".
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export interface HubGauges {
  backlog(): number;
  leasesActive(): number;
  policyVersion(): number;
  step(): number;
}

export class HubMetrics {
  readonly episodes: Counter<"outcome">;
  readonly episodeDuration: Histogram;
  readonly reward: Histogram;
  readonly retried: Counter;
  readonly groupsDropped: Counter<"reason">;
  readonly stale: Counter;
  readonly datasetLinesSkipped: Counter<"dataset">;
  readonly batches: Counter<"result">;

  constructor(registry: Registry, gauges: HubGauges) {
    const registers = [registry];
    new Gauge({
      name: "l0_rollout_backlog",
      help: "Episodes queued (leasable now) plus leased: the autoscaler's base metric.",
      registers,
      collect() {
        this.set(gauges.backlog());
      },
    });
    new Gauge({
      name: "l0_leases_active",
      help: "Leases held by workers right now.",
      registers,
      collect() {
        this.set(gauges.leasesActive());
      },
    });
    new Gauge({
      name: "l0_policy_version",
      help: "Policy version the hub leases episodes with.",
      registers,
      collect() {
        this.set(gauges.policyVersion());
      },
    });
    new Gauge({
      name: "l0_hub_step",
      help: "Training steps whose batch the hub has served.",
      registers,
      collect() {
        this.set(gauges.step());
      },
    });
    this.episodes = new Counter({
      name: "l0_episodes_total",
      help: "Finished episode attempts by how they ended (agent outcomes, infrastructure failures, lease_expired).",
      labelNames: ["outcome"],
      registers,
    });
    this.episodeDuration = new Histogram({
      name: "l0_episode_duration_seconds",
      help: "Wall-clock duration of submitted episodes, as measured by the worker.",
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
    this.reward = new Histogram({
      name: "l0_reward",
      help: "Total reward of scored training episodes (answer + per-turn terms).",
      buckets: [-1, 0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1, 1.2, 1.5, 2, 3],
      registers,
    });
    this.retried = new Counter({
      name: "l0_tasks_retried_total",
      help: "Episodes queued again after an infrastructure failure or an expired lease.",
      registers,
    });
    this.groupsDropped = new Counter({
      name: "l0_groups_dropped_total",
      help: "Question groups dropped from training, by reason (never scored as reward 0).",
      labelNames: ["reason"],
      registers,
    });
    this.stale = new Counter({
      name: "l0_trajectories_stale_total",
      help: "Trajectories discarded for lagging more than maxStaleness policy versions; their episodes are re-sampled.",
      registers,
    });
    this.datasetLinesSkipped = new Counter({
      name: "l0_dataset_lines_skipped_total",
      help: "Dataset lines that could not be used (bad JSON or missing fields).",
      labelNames: ["dataset"],
      registers,
    });
    this.batches = new Counter({
      name: "l0_hub_batches_total",
      help: "Training batches served, full or short (over-sampling cap reached).",
      labelNames: ["result"],
      registers,
    });
  }
}
