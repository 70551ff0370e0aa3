// The L0 Grafana dashboard, built from code with Grafana's foundation SDK. Panels are plain data
// (title, unit, queries) so tests can parse every query with promtool and the end-to-end test can
// run the key ones against a real Prometheus; `buildDashboard()` turns them into dashboard JSON.
import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import * as prometheus from "@grafana/grafana-foundation-sdk/prometheus";
import * as stat from "@grafana/grafana-foundation-sdk/stat";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";

export const DASHBOARD_UID = "l0-overview";

export interface Query {
  expr: string;
  legend: string;
}
export interface PanelSpec {
  title: string;
  description: string;
  kind: "stat" | "timeseries";
  /** Grafana unit id: "short", "percentunit", "s", "reqps", "bytes", "Bps". */
  unit: string;
  queries: Query[];
  /** Width in grid columns (24 per row). */
  span?: number;
}
export interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

// Selectors shared by the queries. `$namespace`/`$run` are dashboard variables; operator series
// about a pool carry the pool's `namespace` and `pool` (its name) instead of `run`.
const RUN = 'namespace=~"$namespace", run=~"$run"';
const HUB = `job="l0-trainer", ${RUN}`;
const WORKER = `job="l0-worker", ${RUN}`;
const SIDECAR = `job="l0-inference", ${RUN}`;
/** The engines' own series (vLLM, SGLang): the chart's engine PodMonitor sets job l0-engine. */
export const ENGINE = `job="l0-engine", ${RUN}`;
const POOL = 'job="l0-operator", namespace=~"$namespace"';
const OP = 'job="l0-operator"';
const R = "$__rate_interval";

const q = (expr: string, legend: string): Query => ({ expr, legend });
const quantiles = (metric: string, sel: string, by = "namespace, run"): Query[] =>
  ["0.5", "0.99"].map((p) =>
    q(
      `histogram_quantile(${p}, sum by (${by}, le) (rate(${metric}_bucket{${sel}}[${R}])))`,
      `p${Number(p) * 100} {{run}}`,
    ),
  );

/** `agg` over the two engines' names of one series, OR-ed: a run serves with one engine or the other. */
const eitherEngine = (agg: string, vllm: string[], sglang: string): string =>
  `${agg} (${[...vllm, sglang].map((m) => `${m}{${ENGINE}}`).join(" or ")})`;

/** The inference engines' own metrics (monitoring/catalog.ts ENGINE_METRICS), vLLM or SGLang. */
const ENGINES_ROW: RowSpec = {
  title: "Inference engines",
  panels: [
    {
      title: "KV-cache usage",
      description:
        "Share of each engine's KV cache in use (vLLM vllm:kv_cache_usage_perc, older vllm:gpu_cache_usage_perc; SGLang sglang:token_usage). Near 1, requests queue or are preempted.",
      kind: "timeseries",
      unit: "percentunit",
      span: 8,
      queries: [
        q(
          eitherEngine(
            "max by (namespace, run, pod)",
            ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
            "sglang:token_usage",
          ),
          "{{pod}}",
        ),
      ],
    },
    {
      title: "Engine requests running and waiting",
      description:
        "Requests in the engines' running batches and in their queues (vLLM vllm:num_requests_running/waiting; SGLang sglang:num_running_reqs/num_queue_reqs).",
      kind: "timeseries",
      unit: "short",
      span: 8,
      queries: [
        q(
          eitherEngine("sum by (namespace, run)", ["vllm:num_requests_running"], "sglang:num_running_reqs"),
          "running {{run}}",
        ),
        q(
          eitherEngine("sum by (namespace, run)", ["vllm:num_requests_waiting"], "sglang:num_queue_reqs"),
          "waiting {{run}}",
        ),
      ],
    },
    {
      title: "Engine generation tokens/s",
      description:
        "Tokens the engines generate per second (vllm:generation_tokens_total, sglang:generation_tokens_total).",
      kind: "timeseries",
      unit: "short",
      span: 8,
      queries: [
        q(
          `sum by (namespace, run) (rate(vllm:generation_tokens_total{${ENGINE}}[${R}]) or rate(sglang:generation_tokens_total{${ENGINE}}[${R}]))`,
          "{{run}}",
        ),
      ],
    },
  ],
};

export const ROWS: readonly RowSpec[] = [
  {
    title: "Training",
    panels: [
      {
        title: "Step",
        description: "Training steps completed (hub).",
        kind: "stat",
        unit: "short",
        span: 4,
        queries: [q(`max by (namespace, run) (l0_hub_step{${HUB}})`, "{{run}}")],
      },
      {
        title: "Policy version",
        description: "Version the hub leases with, and the oldest version an inference engine serves.",
        kind: "stat",
        unit: "short",
        span: 4,
        queries: [
          q(`max by (namespace, run) (l0_policy_version{${HUB}})`, "hub {{run}}"),
          q(`min by (namespace, run) (l0_weights_version{${SIDECAR}, role="served"})`, "engines {{run}}"),
        ],
      },
      {
        title: "Reward and held-out accuracy",
        description:
          "Mean reward of scored trajectories (recording rule run:l0_reward:mean5m) and the last held-out accuracy.",
        kind: "timeseries",
        unit: "short",
        span: 8,
        queries: [
          q(`run:l0_reward:mean5m{${RUN}}`, "reward {{run}}"),
          q(`max by (namespace, run) (l0_eval_accuracy{${HUB}})`, "accuracy {{run}}"),
        ],
      },
      {
        title: "Learner",
        description: "Loss, KL to the reference policy, gradient norm and entropy of the last training step.",
        kind: "timeseries",
        unit: "short",
        span: 8,
        queries: [
          q(`max by (namespace, run) (l0_learner_loss{${HUB}})`, "loss {{run}}"),
          q(`max by (namespace, run) (l0_learner_kl{${HUB}})`, "kl {{run}}"),
          q(`max by (namespace, run) (l0_learner_grad_norm{${HUB}})`, "grad norm {{run}}"),
          q(`max by (namespace, run) (l0_learner_entropy{${HUB}})`, "entropy {{run}}"),
        ],
      },
      {
        title: "Held-out evaluation",
        description:
          "The last in-run evaluation (docs/eval.md): exact match and F1, and with spec.evaluation.judge the judge's accuracy, accuracy given attempted and F-score (SimpleQA's figures).",
        kind: "timeseries",
        unit: "percentunit",
        span: 12,
        queries: [
          q(`max by (namespace, run) (l0_eval_accuracy{${HUB}})`, "exact match {{run}}"),
          q(`max by (namespace, run) (l0_eval_f1{${HUB}})`, "F1 {{run}}"),
          q(`max by (namespace, run) (l0_eval_judge_accuracy{${HUB}})`, "judge accuracy {{run}}"),
          q(
            `max by (namespace, run) (l0_eval_judge_accuracy_given_attempted{${HUB}})`,
            "judge accuracy given attempted {{run}}",
          ),
          q(`max by (namespace, run) (l0_eval_judge_f_score{${HUB}})`, "judge F-score {{run}}"),
        ],
      },
      {
        title: "Judge grades",
        description:
          "Held-out answers at the last evaluation by the judge's grade (correct, incorrect, not attempted, judge failed); empty without a judge.",
        kind: "timeseries",
        unit: "short",
        span: 12,
        queries: [q(`max by (namespace, run, grade) (l0_eval_judge_answers{${HUB}})`, "{{grade}} {{run}}")],
      },
    ],
  },
  {
    title: "Rollouts",
    panels: [
      {
        title: "Episodes/s by outcome",
        description: "Trajectories the hub received per second, by how the episode ended.",
        kind: "timeseries",
        unit: "reqps",
        queries: [q(`sum by (outcome) (rate(l0_episodes_total{${HUB}}[${R}]))`, "{{outcome}}")],
      },
      {
        title: "Backlog vs workers",
        description:
          "Episodes queued + leased (the autoscaler's input) against the replicas it asks for and those ready.",
        kind: "timeseries",
        unit: "short",
        queries: [
          q(`sum(l0_rollout_backlog{${HUB}})`, "backlog"),
          q(`sum(l0_leases_active{${HUB}})`, "leases"),
          q(`sum(max by (namespace, pool) (l0_autoscaler_desired_replicas{${POOL}}))`, "desired workers"),
          q(`sum(max by (namespace, pool) (l0_pool_ready_replicas{${POOL}}))`, "ready workers"),
          q(`sum(l0_worker_episodes_active{${WORKER}})`, "episodes running"),
        ],
      },
      {
        title: "Episode duration",
        description: "Lease-to-submit time of episodes (recording rules).",
        kind: "timeseries",
        unit: "s",
        queries: [
          q(`run:l0_episode_duration_seconds:p50_5m{${RUN}}`, "p50 {{run}}"),
          q(`run:l0_episode_duration_seconds:p99_5m{${RUN}}`, "p99 {{run}}"),
        ],
      },
      {
        title: "Infrastructure failures",
        description:
          "Sandbox, engine and shutdown failures (retried, never scored), retries, and groups dropped by reason.",
        kind: "timeseries",
        unit: "reqps",
        queries: [
          q(
            `sum by (outcome) (rate(l0_episodes_total{${HUB}, outcome=~"sandbox_failure|engine_failure|worker_shutdown|lease_expired"}[${R}]))`,
            "{{outcome}}",
          ),
          q(`sum(rate(l0_tasks_retried_total{${HUB}}[${R}]))`, "tasks retried"),
          q(`sum by (reason) (rate(l0_groups_dropped_total{${HUB}}[${R}]))`, "dropped: {{reason}}"),
        ],
      },
    ],
  },
  {
    title: "Workers and engines",
    panels: [
      {
        title: "Cell and sandbox latency",
        description: "Code cell execution (recording rules) and sandbox start-up percentiles.",
        kind: "timeseries",
        unit: "s",
        queries: [
          q(`run:l0_cell_seconds:p50_5m{${RUN}}`, "cell p50 {{run}}"),
          q(`run:l0_cell_seconds:p99_5m{${RUN}}`, "cell p99 {{run}}"),
          ...quantiles("l0_sandbox_start_seconds", WORKER).map((x) => ({
            ...x,
            legend: "sandbox " + x.legend,
          })),
        ],
      },
      {
        title: "LLM request latency",
        description: "Completion requests from workers to the inference engine (recording rules).",
        kind: "timeseries",
        unit: "s",
        queries: [
          q(`run:l0_llm_request_seconds:p50_5m{${RUN}}`, "p50 {{run}}"),
          q(`run:l0_llm_request_seconds:p99_5m{${RUN}}`, "p99 {{run}}"),
        ],
      },
      {
        title: "LLM tokens/s",
        description: "Prompt tokens sent and completion tokens sampled per second.",
        kind: "timeseries",
        unit: "short",
        queries: [q(`sum by (kind) (rate(l0_llm_tokens_total{${WORKER}}[${R}]))`, "{{kind}}")],
      },
      {
        title: "Tool calls/s",
        description: "Tool calls proxied for the kernels, by tool and result.",
        kind: "timeseries",
        unit: "reqps",
        queries: [
          q(`sum by (tool, result) (rate(l0_tool_calls_total{${WORKER}}[${R}]))`, "{{tool}} {{result}}"),
        ],
      },
      {
        title: "Weight sync",
        description: "Time for a new version to be served by an engine, and weight bytes moved.",
        kind: "timeseries",
        unit: "s",
        queries: [
          ...quantiles("l0_weights_sync_seconds", SIDECAR),
          q(`sum(rate(l0_weights_chunk_retries_total{${SIDECAR}}[${R}]))`, "chunk retries/s"),
          q(`sum by (direction) (rate(l0_weights_bytes_total{${SIDECAR}}[${R}]))`, "bytes/s {{direction}}"),
        ],
      },
    ],
  },
  ENGINES_ROW,
  {
    title: "Operator",
    panels: [
      {
        title: "Reconciles/s",
        description: "Reconciles by controller and result (recording rule controller:l0_reconcile:rate5m).",
        kind: "timeseries",
        unit: "reqps",
        queries: [q(`controller:l0_reconcile:rate5m`, "{{controller}} {{result}}")],
      },
      {
        title: "Reconcile errors and queue",
        description: "Share of reconciles that failed, work-queue depth and retries.",
        kind: "timeseries",
        unit: "short",
        queries: [
          q(`controller:l0_reconcile_errors:ratio10m`, "error ratio {{controller}}"),
          q(`sum by (controller) (l0_workqueue_depth{${OP}})`, "depth {{controller}}"),
          q(
            `sum by (controller) (rate(l0_workqueue_retries_total{${OP}}[${R}]))`,
            "retries/s {{controller}}",
          ),
        ],
      },
      {
        title: "Reconcile duration",
        description: "Reconcile latency percentiles by controller.",
        kind: "timeseries",
        unit: "s",
        queries: ["0.5", "0.99"].map((p) =>
          q(
            `histogram_quantile(${p}, sum by (controller, le) (rate(l0_reconcile_duration_seconds_bucket{${OP}}[${R}])))`,
            `p${Number(p) * 100} {{controller}}`,
          ),
        ),
      },
      {
        title: "Autoscaler decisions",
        description: "Scaling decisions per second by direction and reason, and which replica leads.",
        kind: "timeseries",
        unit: "short",
        queries: [
          q(
            `sum by (direction, reason) (rate(l0_autoscaler_decisions_total{${OP}}[${R}]))`,
            "{{direction}} {{reason}}",
          ),
          q(`max by (pod) (l0_operator_leader{${OP}})`, "leader {{pod}}"),
        ],
      },
    ],
  },
];

/** Every query of the dashboard, with the panel it belongs to. */
export function allQueries(rows: readonly RowSpec[] = ROWS): { panel: string; expr: string }[] {
  return rows.flatMap((r) =>
    r.panels.flatMap((p) => p.queries.map((x) => ({ panel: p.title, expr: x.expr }))),
  );
}

/** Replaces Grafana's variables with values a plain Prometheus accepts (for parsing and the e2e test). */
export function expandVariables(expr: string, vars: Record<string, string> = {}): string {
  return expr
    .replaceAll("$__rate_interval", vars.__rate_interval ?? "5m")
    .replace(/\$\{?(\w+)\}?/g, (_, name: string) => vars[name] ?? ".*");
}

const DS = { type: "prometheus", uid: "${datasource}" };

function panel(spec: PanelSpec) {
  const targets = spec.queries.map((x, i) =>
    new prometheus.DataqueryBuilder()
      .expr(x.expr)
      .legendFormat(x.legend)
      .refId(String.fromCharCode(65 + i)),
  );
  // The two builders share these setters but not a type, so each branch repeats the chain.
  if (spec.kind === "stat") {
    return new stat.PanelBuilder()
      .title(spec.title)
      .description(spec.description)
      .datasource(DS)
      .unit(spec.unit)
      .height(8)
      .span(spec.span ?? 12)
      .targets(targets)
      .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(["lastNotNull"]));
  }
  return new timeseries.PanelBuilder()
    .title(spec.title)
    .description(spec.description)
    .datasource(DS)
    .unit(spec.unit)
    .height(8)
    .span(spec.span ?? 12)
    .targets(targets)
    .fillOpacity(10)
    .lineWidth(1);
}

function labelVariable(name: string, label: string, query: string): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(DS)
    .query({ query, refId: "PrometheusVariableQueryEditor-VariableQuery" })
    .definition(query)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .includeAll(true)
    .allValue(".*")
    .multi(true)
    .sort(dashboard.VariableSort.AlphabeticalAsc);
}

/** The dashboard as Grafana JSON (schema of Grafana 10/11 dashboards). */
export function buildDashboard(rows: readonly RowSpec[] = ROWS): dashboard.Dashboard {
  const b = new dashboard.DashboardBuilder("L0 Operator: training runs")
    .uid(DASHBOARD_UID)
    .description(
      "Agentic RL runs on Kubernetes: reward, rollouts, sandboxed workers, inference and the operator.",
    )
    .tags(["l0", "rl", "kubernetes"])
    .editable()
    .refresh("30s")
    .time({ from: "now-3h", to: "now" })
    .timezone("browser")
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .withVariable(
      new dashboard.DatasourceVariableBuilder("datasource").label("Data source").type("prometheus"),
    )
    .withVariable(
      labelVariable("namespace", "Namespace", 'label_values(l0_policy_version{job="l0-trainer"}, namespace)'),
    )
    .withVariable(
      labelVariable(
        "run",
        "Run",
        'label_values(l0_policy_version{job="l0-trainer", namespace=~"$namespace"}, run)',
      ),
    );
  for (const row of rows) {
    b.withRow(new dashboard.RowBuilder(row.title));
    for (const p of row.panels) b.withPanel(panel(p));
  }
  return b.build();
}

/** The JSON file the chart ships (stable key order, trailing newline). */
export function dashboardJson(rows: readonly RowSpec[] = ROWS): string {
  return JSON.stringify(buildDashboard(rows), null, 2) + "\n";
}
