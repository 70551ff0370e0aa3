// The chart's monitoring objects, rendered only where the Prometheus Operator's kinds are served
// (guarded by Capabilities): monitors, the rule file and the dashboard, each switchable.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { buildDashboard } from "../../monitoring/dashboard.js";
import { MONITORING_APIS, ROOT, type K8sObject, find, helm, one, render, validate } from "./helm.js";
import { FULLNAME } from "./operator-chart.js";

describe("chart: l0-operator", function () {
  this.timeout(60_000);
  before(() => helm());
  describe("with the Prometheus Operator's kinds served", () => {
    let objs: K8sObject[];
    before(() => {
      objs = render(MONITORING_APIS);
    });

    it("adds a ServiceMonitor, two PodMonitors (runs, engines) and a PrometheusRule, each valid against its CRD schema", async () => {
      for (const kind of ["ServiceMonitor", "PrometheusRule"]) await validate(one(objs, kind));
      expect(find(objs, "PodMonitor").map((o) => o.metadata.name)).to.have.members([
        `${FULLNAME}-runs`,
        `${FULLNAME}-engines`,
      ]);
      for (const pm of find(objs, "PodMonitor")) await validate(pm);
    });

    it("the ServiceMonitor scrapes the metrics Service as job l0-operator, keeping the pools' namespace", () => {
      const sm = one(objs, "ServiceMonitor").spec as {
        selector: { matchLabels: Record<string, string> };
        endpoints: {
          port: string;
          honorLabels: boolean;
          relabelings: { targetLabel: string; replacement: string }[];
        }[];
      };
      const svc = one(objs, "Service");
      for (const [k, v] of Object.entries(sm.selector.matchLabels))
        expect(svc.metadata.labels?.[k]).to.equal(v);
      expect(sm.endpoints[0]).to.include({ port: "metrics", honorLabels: true });
      expect(sm.endpoints[0]!.relabelings).to.deep.include({
        action: "replace",
        targetLabel: "job",
        replacement: "l0-operator",
      });
    });

    it("the PodMonitor maps pod labels to the job and run labels the rules use", () => {
      const pm = one(objs, "PodMonitor", `${FULLNAME}-runs`).spec as {
        namespaceSelector: Record<string, unknown>;
        selector: { matchLabels: Record<string, string>; matchExpressions: { values: string[] }[] };
        podMetricsEndpoints: {
          port: string;
          relabelings: {
            sourceLabels: string[];
            targetLabel: string;
            regex?: string;
            replacement?: string;
          }[];
        }[];
      };
      expect(pm.namespaceSelector).to.deep.equal({ any: true });
      // The labels operator/labels.ts puts on the pods it builds.
      expect(pm.selector.matchLabels).to.deep.equal({
        "app.kubernetes.io/name": "l0",
        "app.kubernetes.io/managed-by": "l0-operator",
      });
      expect(pm.selector.matchExpressions[0]!.values).to.have.members(["trainer", "workers", "inference"]);
      const [job] = pm.podMetricsEndpoints[0]!.relabelings;
      const rx = new RegExp(`^(?:${job!.regex})$`);
      for (const [component, want] of [
        ["trainer", "l0-trainer"],
        ["workers", "l0-worker"],
        ["inference", "l0-inference"],
      ])
        expect(component!.replace(rx, job!.replacement!)).to.equal(want);
      const targets = pm.podMetricsEndpoints[0]!.relabelings.map((r) => [r.sourceLabels[0], r.targetLabel]);
      expect(targets).to.deep.equal([
        ["__meta_kubernetes_pod_label_app_kubernetes_io_component", "job"],
        ["__meta_kubernetes_pod_label_l0_dev_run", "run"],
      ]);
    });

    it("the PrometheusRule carries monitoring/rules/l0.rules.yaml verbatim", () => {
      const source = parse(readFileSync(join(ROOT, "monitoring/rules/l0.rules.yaml"), "utf8")) as unknown;
      expect(one(objs, "PrometheusRule").spec).to.deep.equal(source);
    });

    it("the dashboard ConfigMap holds the dashboard monitoring/dashboard.ts builds", () => {
      const cm = one(objs, "ConfigMap");
      expect(cm.metadata.labels).to.include({ grafana_dashboard: "1" });
      const json = (cm.data as Record<string, string>)["l0-overview.json"]!;
      expect(JSON.parse(json)).to.deep.equal(JSON.parse(JSON.stringify(buildDashboard())));
    });

    it("each monitoring kind can be switched off by values", () => {
      const off = render([
        ...MONITORING_APIS,
        "--set",
        "serviceMonitor.enabled=false,podMonitor.enabled=false,enginePodMonitor.enabled=false,prometheusRule.enabled=false,grafanaDashboard.enabled=false",
      ]);
      for (const kind of ["ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"])
        expect(find(off, kind), kind).to.have.length(0);
    });
  });
});
