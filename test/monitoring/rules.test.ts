// Alert/recording rules and dashboard queries checked with the real promtool (Debian's
// prometheus package), and cross-checked against the metric catalog and docs/metrics.md.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { ENGINE_METRICS, METRICS, engineSeriesIn, seriesIndex } from "../../monitoring/catalog.js";
import { ROWS, allQueries, expandVariables } from "../../monitoring/dashboard.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const RULES = join(ROOT, "monitoring/rules/l0.rules.yaml");
const RULE_TESTS = join(ROOT, "monitoring/rules/l0.rules.test.yaml");

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
}
const groups = (): { name: string; rules: Rule[] }[] =>
  (parse(readFileSync(RULES, "utf8")) as { groups: { name: string; rules: Rule[] }[] }).groups;

function promtool(args: string[]): { status: number; out: string } {
  const r = spawnSync("promtool", args, { encoding: "utf8", timeout: 30_000 });
  return { status: r.status ?? -1, out: (r.stdout ?? "") + (r.stderr ?? "") };
}

/** Metric names (l0_* and recorded level:metric:op series) a PromQL expression reads. */
function seriesIn(expr: string): string[] {
  return [...expr.matchAll(/\b([a-z]+:l0_[a-z0-9_]+:[a-z0-9_]+|l0_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

describe("monitoring: rules and dashboard", function () {
  this.timeout(30_000);

  it("promtool check rules accepts l0.rules.yaml", () => {
    const r = promtool(["check", "rules", RULES]);
    expect(r.status, r.out).to.equal(0);
    expect(r.out).to.match(/SUCCESS: \d+ rules found/);
  });

  it("promtool test rules: every alert fires on its bad history and stays quiet on the good one", () => {
    const r = promtool(["test", "rules", RULE_TESTS]);
    expect(r.status, r.out).to.equal(0);
    // Each alert of the file is exercised by at least one test case.
    const tested = readFileSync(RULE_TESTS, "utf8");
    for (const a of groups().flatMap((g) => g.rules.filter((x) => x.alert)))
      expect(tested, `no promtool test for ${a.alert}`).to.include(`alertname: ${a.alert}`);
  });

  it("has the alerts the issue asks for, each with a severity, summary and description", () => {
    const alerts = groups().flatMap((g) => g.rules.filter((r) => r.alert)) as (Rule & {
      labels: Record<string, string>;
      annotations: Record<string, string>;
    })[];
    expect(alerts.map((a) => a.alert)).to.have.members([
      "L0RunNoProgress",
      "L0RolloutFailureRateHigh",
      "L0WorkersSaturated",
      "L0HubUnreachable",
      "L0ReconcileErrors",
      "L0OperatorLeaderMissing",
    ]);
    for (const a of alerts) {
      expect(a.labels.severity, a.alert).to.be.oneOf(["info", "warning", "critical"]);
      expect(a.annotations, a.alert).to.include.keys("summary", "description");
    }
  });

  it("every series the rules and the dashboard read is in the catalog or recorded by a rule", () => {
    const known = seriesIndex();
    const recorded = new Set(groups().flatMap((g) => g.rules.flatMap((r) => (r.record ? [r.record] : []))));
    const exprs = [
      ...groups().flatMap((g) => g.rules.map((r) => ({ where: r.alert ?? r.record!, expr: r.expr }))),
      ...allQueries().map((q) => ({ where: `panel "${q.panel}"`, expr: q.expr })),
    ];
    const unknown = exprs.flatMap(({ where, expr }) =>
      seriesIn(expr)
        .filter((s) => !known.has(s) && !recorded.has(s))
        .map((s) => `${where}: ${s}`),
    );
    expect(unknown).to.deep.equal([]);
  });

  it("every engine series the dashboard reads is in ENGINE_METRICS, from job l0-engine", () => {
    const known = seriesIndex(ENGINE_METRICS);
    const read = allQueries().flatMap((q) => engineSeriesIn(q.expr).map((s) => ({ ...q, s })));
    expect(read.length, "the engine row reads engine series").to.be.greaterThan(0);
    expect(read.filter((r) => !known.has(r.s)).map((r) => `panel "${r.panel}": ${r.s}`)).to.deep.equal([]);
    for (const r of read) expect(r.expr, r.panel).to.include('job="l0-engine"');
  });

  it("each engine query reads both engines (a run serves with vLLM or SGLang)", () => {
    const engineQueries = allQueries().filter((q) => engineSeriesIn(q.expr).length > 0);
    for (const q of engineQueries) {
      const names = engineSeriesIn(q.expr);
      expect(
        names.some((n) => n.startsWith("vllm:")),
        `${q.panel}: vLLM`,
      ).to.equal(true);
      expect(
        names.some((n) => n.startsWith("sglang:")),
        `${q.panel}: SGLang`,
      ).to.equal(true);
    }
  });

  it("every dashboard query parses (promtool, with Grafana's variables expanded)", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-dash-"));
    try {
      const queries = allQueries();
      const file = join(dir, "dashboard.rules.yaml");
      writeFileSync(
        file,
        stringify({
          groups: [
            {
              name: "dashboard",
              rules: queries.map((q, i) => ({
                record: `dashboard:query:${i}`,
                expr: expandVariables(q.expr),
              })),
            },
          ],
        }),
      );
      const r = promtool(["check", "rules", file]);
      expect(r.status, r.out).to.equal(0);
      expect(r.out).to.include(`SUCCESS: ${queries.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a broken query is caught by the same check (the check can fail)", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-dash-"));
    try {
      const file = join(dir, "bad.rules.yaml");
      writeFileSync(
        file,
        stringify({ groups: [{ name: "g", rules: [{ record: "x:y:z", expr: "sum by (a (up)" }] }] }),
      );
      expect(promtool(["check", "rules", file]).status).to.not.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the dashboard has the panels the issue asks for", () => {
    const titles = ROWS.flatMap((r) => r.panels.map((p) => p.title));
    expect(titles).to.include.members([
      "Reward and held-out accuracy",
      "Policy version",
      "Episodes/s by outcome",
      "Backlog vs workers",
      "Episode duration",
      "Cell and sandbox latency",
      "Infrastructure failures",
      "LLM request latency",
      "LLM tokens/s",
      "Learner",
      "Reconciles/s",
      "Reconcile errors and queue",
      "KV-cache usage",
      "Engine requests running and waiting",
      "Engine generation tokens/s",
      "Held-out evaluation",
      "Judge grades",
    ]);
  });

  it("expandVariables turns Grafana variables into values Prometheus accepts", () => {
    expect(expandVariables('rate(x{namespace=~"$namespace", run=~"${run}"}[$__rate_interval])')).to.equal(
      'rate(x{namespace=~".*", run=~".*"}[5m])',
    );
    expect(expandVariables('x{run=~"$run"}', { run: "qa" })).to.equal('x{run=~"qa"}');
  });

  it("docs/metrics.md lists every metric of the catalog and every engine metric with its type, labels, meaning and source", () => {
    // Cells compared with their padding collapsed (prettier aligns Markdown table columns).
    const doc = readFileSync(join(ROOT, "docs/metrics.md"), "utf8").replace(/ *\| */g, " | ");
    for (const m of [...METRICS, ...ENGINE_METRICS]) {
      const labels = m.labels.map((l) => "`" + l + "`").join(", ") || "—";
      expect(doc, m.name).to.include(`| \`${m.name}\` | ${m.type} | ${labels} | ${m.help} | ${m.source} |`);
    }
  });

  it("engine metrics are the engines' (vllm:/sglang: names, counters end in _total, job l0-engine)", () => {
    for (const m of ENGINE_METRICS) {
      expect(m.name, m.name).to.match(/^(vllm|sglang):[a-z0-9_]+$/);
      expect(m.name.endsWith("_total"), m.name).to.equal(m.type === "counter");
      expect(m.job, m.name).to.equal("l0-engine");
    }
  });

  it("catalog names follow Prometheus conventions", () => {
    for (const m of METRICS) {
      expect(m.name, m.name).to.match(/^l0_[a-z0-9_]+$/);
      if (m.type === "counter") expect(m.name, m.name).to.match(/_total$/);
      else expect(m.name, m.name).not.to.match(/_total$/);
      expect(m.labels, m.name).not.to.include.members(["run", "job", "pod", "instance", "episode"]);
    }
  });
});
