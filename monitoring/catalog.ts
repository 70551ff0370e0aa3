// The catalog of every L0 metric: name, type, labels, meaning and which program exposes it.
// docs/metrics.md, the alert rules, the dashboard and the end-to-end scrape test are checked
// against it, so a renamed metric breaks a test instead of silently emptying a panel.

export type MetricType = "counter" | "gauge" | "histogram";
/** The scrape job a metric is read from; the chart's ServiceMonitor/PodMonitor set `job` to these. */
export type Job = "l0-trainer" | "l0-worker" | "l0-operator" | "l0-inference" | "l0-engine";

export interface MetricSpec {
  name: string;
  type: MetricType;
  labels: readonly string[];
  help: string;
  /** Where it is exposed: the hub (trainer pod), worker, operator or weight sidecar (inference pod). */
  job: Job;
  /** The issue that asked for it; metrics named here first are "requested" from that program. */
  source: string;
}

const hub = (
  name: string,
  type: MetricType,
  help: string,
  labels: string[] = [],
  source = "hub",
): MetricSpec => ({ name, type, labels, help, job: "l0-trainer", source });
const worker = (name: string, type: MetricType, help: string, labels: string[] = []): MetricSpec => ({
  name,
  type,
  labels,
  help,
  job: "l0-worker",
  source: "worker",
});
const operator = (
  name: string,
  type: MetricType,
  help: string,
  labels: string[],
  source = "operator",
): MetricSpec => ({ name, type, labels, help, job: "l0-operator", source });

export const METRICS: readonly MetricSpec[] = [
  // Rollout hub (trainer pod).
  hub("l0_rollout_backlog", "gauge", "Episodes queued plus leased: the autoscaler's input."),
  hub("l0_leases_active", "gauge", "Leases currently held by workers."),
  hub("l0_episodes_total", "counter", "Trajectories received, by how the episode ended.", ["outcome"]),
  hub("l0_episode_duration_seconds", "histogram", "Wall time of an episode, lease to submit."),
  hub("l0_reward", "histogram", "Reward of each scored trajectory (final answer plus per-turn rewards)."),
  hub("l0_tasks_retried_total", "counter", "Tasks put back in the queue after an infrastructure failure."),
  hub("l0_groups_dropped_total", "counter", "Task groups dropped, by reason (e.g. zero_variance, infra).", [
    "reason",
  ]),
  hub("l0_policy_version", "gauge", "Policy version the hub leases tasks with; +1 per training step."),
  hub("l0_hub_step", "gauge", "Training steps whose batch the hub has served."),
  hub("l0_trajectories_stale_total", "counter", "Trajectories discarded for lagging more than maxStaleness."),
  hub("l0_dataset_lines_skipped_total", "counter", "Dataset lines that could not be used.", ["dataset"]),
  hub("l0_hub_batches_total", "counter", "Training batches served, full or short.", ["result"]),
  hub(
    "l0_eval_accuracy",
    "gauge",
    "Held-out answer accuracy (mean exact match, 0..1) at the last evaluation.",
    [],
    "loop",
  ),
  // The rest of `l0 eval`'s summary for the in-run evaluation (docs/eval.md); the judge's only
  // with spec.evaluation.judge.
  hub("l0_eval_f1", "gauge", "Mean held-out answer F1 (0..1) at the last evaluation.", [], "loop"),
  hub(
    "l0_eval_reward",
    "gauge",
    "Mean training reward of the held-out episodes at the last evaluation.",
    [],
    "loop",
  ),
  hub(
    "l0_eval_judge_answers",
    "gauge",
    "Held-out answers at the last evaluation by the judge's grade (spec.evaluation.judge).",
    ["grade"],
    "loop",
  ),
  hub("l0_eval_judge_accuracy", "gauge", "Judge: correct / graded at the last evaluation.", [], "loop"),
  hub(
    "l0_eval_judge_accuracy_given_attempted",
    "gauge",
    "Judge: correct / (correct + incorrect) at the last evaluation.",
    [],
    "loop",
  ),
  hub(
    "l0_eval_judge_f_score",
    "gauge",
    "Judge: harmonic mean of accuracy and accuracy given attempted at the last evaluation.",
    [],
    "loop",
  ),
  // Learner figures of the last Train call, exposed by the hub (the learner has no HTTP server).
  hub("l0_learner_loss", "gauge", "Total loss of the last training step.", [], "loop"),
  hub("l0_learner_kl", "gauge", "KL to the reference policy at the last training step.", [], "loop"),
  hub("l0_learner_grad_norm", "gauge", "Gradient norm (before clipping) at the last step.", [], "loop"),
  hub("l0_learner_entropy", "gauge", "Mean token entropy of the policy at the last step.", [], "loop"),
  hub(
    "l0_learner_logprob_gap",
    "gauge",
    "Mean absolute trainer-vs-engine log-prob difference per token at the last step.",
    [],
    "loop",
  ),
  hub("l0_trainer_step_seconds", "gauge", "Wall time of the last step (rollout + train).", [], "loop"),
  hub("l0_trainer_train_seconds", "gauge", "Wall time of the last Learner.Train call.", [], "loop"),
  hub(
    "l0_trainer_checkpoints_total",
    "counter",
    "Checkpoints of learner and hub state written, by result.",
    ["result"],
    "loop",
  ),
  hub(
    "l0_trainer_tensorboard_errors_total",
    "counter",
    "TensorBoard event-file appends that failed (the step is missing from the curves; training went on).",
    [],
    "loop",
  ),
  // Weights service (trainer pod) and weight sidecar (inference pod).
  {
    name: "l0_weights_version",
    type: "gauge",
    labels: ["role"],
    help: "Newest exported policy version (role=exported) or the one the engine serves (role=served).",
    job: "l0-inference",
    source: "weights",
  },
  {
    name: "l0_weights_bytes_total",
    type: "counter",
    labels: ["direction"],
    help: "Weight bytes streamed, by direction (sent, received).",
    job: "l0-inference",
    source: "weights",
  },
  {
    name: "l0_weights_sync_seconds",
    type: "histogram",
    labels: [],
    help: "Time from a version's announcement to the engine serving it.",
    job: "l0-inference",
    source: "weights",
  },
  {
    name: "l0_weights_chunk_retries_total",
    type: "counter",
    labels: [],
    help: "Chunks pulled again after a hash mismatch or a cut.",
    job: "l0-inference",
    source: "weights",
  },
  // Agent worker.
  worker("l0_worker_episodes_active", "gauge", "Episodes this worker is running now."),
  worker("l0_episodes_total", "counter", "Episodes finished by this worker, by outcome.", ["outcome"]),
  worker("l0_sandbox_start_seconds", "histogram", "Time to start a sandboxed kernel (bwrap + Python ready)."),
  worker("l0_cell_seconds", "histogram", "Wall time of one code cell in the kernel, by outcome.", [
    "outcome",
  ]),
  worker("l0_llm_request_seconds", "histogram", "Engine HTTP request latency, by endpoint and result.", [
    "endpoint",
    "result",
  ]),
  worker("l0_llm_tokens_total", "counter", "Tokens sent and sampled, by kind (prompt, completion).", [
    "kind",
  ]),
  worker("l0_tool_calls_total", "counter", "Tool calls proxied for the kernel, by tool and result.", [
    "tool",
    "result",
  ]),
  worker("l0_worker_hub_errors_total", "counter", "Failed calls to the rollout hub, by call.", ["call"]),
  // Operator.
  operator(
    "l0_reconcile_total",
    "counter",
    "Reconciles by controller and result (success, requeue, conflict, error, terminal).",
    ["controller", "result"],
  ),
  operator("l0_reconcile_duration_seconds", "histogram", "Duration of one reconcile.", ["controller"]),
  operator("l0_workqueue_depth", "gauge", "Keys waiting in the work queue.", ["controller"]),
  operator("l0_workqueue_retries_total", "counter", "Keys requeued with backoff after an error.", [
    "controller",
  ]),
  operator("l0_operator_kube_requests_total", "counter", "Requests to the Kubernetes API by method.", [
    "method",
  ]),
  operator("l0_operator_leader", "gauge", "1 while this replica holds the leader Lease, else 0.", []),
  operator(
    "l0_autoscaler_desired_replicas",
    "gauge",
    "Replicas the autoscaler last recommended for a pool.",
    ["namespace", "pool"],
    "autoscaler",
  ),
  operator(
    "l0_autoscaler_decisions_total",
    "counter",
    "Autoscaler decisions, by direction (up, down, none) and reason.",
    ["direction", "reason"],
    "autoscaler",
  ),
  operator(
    "l0_autoscaler_backlog",
    "gauge",
    "Backlog the autoscaler's last decision for a pool used.",
    ["namespace", "pool"],
    "autoscaler",
  ),
  operator(
    "l0_pool_max_replicas",
    "gauge",
    "The pool's autoscaling.maxReplicas (autoscaled pools only).",
    ["namespace", "pool"],
    "operator",
  ),
  operator(
    "l0_pool_ready_replicas",
    "gauge",
    "Ready worker pods of the pool.",
    ["namespace", "pool"],
    "operator",
  ),
];

const VLLM = "vLLM v0.11 docs (V1 engine; VLLM_IMAGE is v0.11.0)";
const SGLANG = "SGLang production-metrics docs (with --enable-metrics)";
const engine = (name: string, type: MetricType, help: string, source: string): MetricSpec => ({
  name,
  type,
  labels: ["model_name"],
  help,
  job: "l0-engine",
  source,
});

/**
 * Metrics the inference engines expose themselves, not L0's (the engines' names and units), read by
 * the dashboard's engine row as job l0-engine (the chart's engine PodMonitor, through the sidecar's
 * /engine/metrics). Checked against vLLM's docs/design/metrics.md (v0.11, V1 engine) and SGLang's
 * docs/references/production_metrics.md (v0.5; needs --enable-metrics, which the operator passes).
 * No test can scrape a real engine here; docs/metrics.md lists these with this source.
 */
export const ENGINE_METRICS: readonly MetricSpec[] = [
  engine("vllm:kv_cache_usage_perc", "gauge", "Fraction of KV-cache blocks in use (0..1).", VLLM),
  engine(
    "vllm:gpu_cache_usage_perc",
    "gauge",
    "Older name of vllm:kv_cache_usage_perc (deprecated; for images that still expose it).",
    "vLLM, older releases",
  ),
  engine("vllm:num_requests_running", "gauge", "Requests in the running batch.", VLLM),
  engine("vllm:num_requests_waiting", "gauge", "Requests waiting to be scheduled.", VLLM),
  engine("vllm:generation_tokens_total", "counter", "Generated (completion) tokens.", VLLM),
  engine("sglang:token_usage", "gauge", "Fraction of the KV-cache token pool in use (0..1).", SGLANG),
  engine("sglang:num_running_reqs", "gauge", "Requests in the running batch.", SGLANG),
  engine("sglang:num_queue_reqs", "gauge", "Requests waiting in the queue.", SGLANG),
  engine("sglang:generation_tokens_total", "counter", "Generated (completion) tokens.", SGLANG),
];

/** Engine series (vllm:*, sglang:*) a PromQL expression reads. */
export function engineSeriesIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:vllm|sglang):[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

/** Values of the hub's `outcome` label that are infrastructure failures (retried, never scored). */
export const INFRA_OUTCOMES = [
  "sandbox_failure",
  "engine_failure",
  "worker_shutdown",
  "lease_expired",
] as const;

/** All series names a metric produces in the exposition format (histograms have three). */
export function seriesNames(m: MetricSpec): string[] {
  return m.type === "histogram" ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name];
}

/** Maps every exposed series name to its metric. */
export function seriesIndex(metrics: readonly MetricSpec[] = METRICS): Map<string, MetricSpec> {
  const out = new Map<string, MetricSpec>();
  for (const m of metrics) for (const s of seriesNames(m)) out.set(s, m);
  return out;
}
