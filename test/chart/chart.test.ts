// The Helm chart rendered by the real helm: lint, default and representative values, schema
// validation of every object, RBAC exactly as operator/rbac.ts, hardened pods, monitoring objects
// guarded by Capabilities, values.schema.json rejections, and the generated files in sync.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { LEADER_ELECTION_RULES, OPERATOR_RULES } from "../../operator/rbac.js";
import { buildDashboard } from "../../monitoring/dashboard.js";
import {
  CHART,
  MONITORING_APIS,
  NAMESPACE,
  ROOT,
  type K8sObject,
  find,
  helm,
  one,
  render,
  runHelm,
  validate,
} from "./helm.js";

const REPRESENTATIVE = join(ROOT, "test/chart/fixtures/representative.yaml");
const FULLNAME = "l0-l0-operator";

type Container = {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  securityContext: Record<string, unknown>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  ports: { name: string; containerPort: number }[];
};
type PodSpec = {
  securityContext: Record<string, unknown>;
  containers: Container[];
  imagePullSecrets?: { name: string }[];
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  affinity?: Record<string, unknown>;
  serviceAccountName: string;
};
const podSpec = (objs: K8sObject[]): PodSpec =>
  (one(objs, "Deployment").spec as { template: { spec: PodSpec } }).template.spec;
const env = (c: Container): Record<string, string | undefined> =>
  Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
const plainRules = (rules: readonly { apiGroups: string[]; resources: string[]; verbs: string[] }[]) =>
  rules.map((r) => ({ apiGroups: r.apiGroups, resources: r.resources, verbs: r.verbs }));

describe("chart: l0-operator", function () {
  this.timeout(60_000);
  before(() => helm());

  describe("helm lint --strict", () => {
    for (const [name, args] of [
      ["default values", []],
      ["representative values", ["--values", REPRESENTATIVE]],
    ] as const) {
      it(`passes with ${name}`, () => {
        const r = runHelm(["lint", "--strict", CHART, ...args]);
        expect(r.status, r.stdout + r.stderr).to.equal(0);
        expect(r.stdout).to.match(/1 chart\(s\) linted, 0 chart\(s\) failed/);
      });
    }
  });

  describe("default values", () => {
    let objs: K8sObject[];
    before(() => {
      objs = render();
    });

    it("renders the operator's objects and no monitoring kinds on a cluster without them", () => {
      expect(objs.map((o) => o.kind).sort()).to.deep.equal([
        "ClusterRole",
        "ClusterRole", // the aggregated user roles (edit, view)
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
      ]);
    });

    it("every object passes its Kubernetes schema and carries the chart's labels", async () => {
      for (const o of objs) {
        await validate(o);
        expect(o.metadata.labels?.["app.kubernetes.io/part-of"], `${o.kind} ${o.metadata.name}`).to.equal(
          "l0",
        );
        expect(o.metadata.labels?.["app.kubernetes.io/managed-by"]).to.equal("Helm");
      }
    });

    it("namespaced objects land in the release namespace", () => {
      for (const o of objs.filter((x) => !x.kind.startsWith("Cluster")))
        expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).to.equal(NAMESPACE);
    });

    it("runs the operator hardened: non-root, read-only root, no escalation, no capabilities, seccomp", () => {
      const spec = podSpec(objs);
      expect(spec.securityContext).to.include({ runAsNonRoot: true });
      expect(spec.securityContext.runAsUser).to.be.a("number").and.above(0);
      expect(spec.securityContext.seccompProfile).to.deep.equal({ type: "RuntimeDefault" });
      const c = spec.containers[0]!;
      expect(c.securityContext).to.deep.include({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ["ALL"] },
      });
      expect(c.securityContext).not.to.have.property("privileged", true);
      expect(c.resources.requests).to.include.keys("cpu", "memory");
      expect(c.resources.limits).to.include.keys("memory");
    });

    it("probes /healthz and /readyz on the metrics port the Service exposes", () => {
      const c = podSpec(objs).containers[0]!;
      expect(c.livenessProbe.httpGet).to.deep.equal({ path: "/healthz", port: "metrics" });
      expect(c.readinessProbe.httpGet).to.deep.equal({ path: "/readyz", port: "metrics" });
      expect(c.ports).to.deep.equal([{ name: "metrics", containerPort: 8080, protocol: "TCP" }]);
      const svc = one(objs, "Service").spec as { ports: { targetPort: string }[] };
      expect(svc.ports[0]!.targetPort).to.equal("metrics");
    });

    it("runs `l0 operator` from the appVersion image with leader election and default images", () => {
      const c = podSpec(objs).containers[0]!;
      expect(c.image).to.equal("ghcr.io/l0-operator/operator:0.1.0");
      expect(c.args).to.deep.equal(["operator"]);
      expect(env(c)).not.to.have.property("L0_OPERATOR_NAMESPACE");
      expect(env(c)).to.include({
        L0_OPERATOR_LEADER_ELECT: "true",
        L0_OPERATOR_METRICS_PORT: "8080",
        L0_OPERATOR_LEASE_NAME: FULLNAME,
        L0_OPERATOR_DEFAULT_WORKER_IMAGE: "ghcr.io/l0-operator/worker:0.1.0",
        L0_OPERATOR_DEFAULT_TRAINER_IMAGE: "ghcr.io/l0-operator/trainer:0.1.0",
      });
      expect((one(objs, "Deployment").spec as { replicas: number }).replicas).to.be.at.least(2);
    });

    it("grants exactly operator/rbac.ts: OPERATOR_RULES cluster-wide, leases only in its own namespace", () => {
      const cr = one(objs, "ClusterRole", FULLNAME);
      expect(cr.rules).to.deep.equal(plainRules(OPERATOR_RULES));
      const le = one(objs, "Role");
      expect(le.metadata.namespace).to.equal(NAMESPACE);
      expect(le.rules).to.deep.equal(plainRules(LEADER_ELECTION_RULES));
      for (const b of [...find(objs, "ClusterRoleBinding"), ...find(objs, "RoleBinding")]) {
        expect(b.subjects).to.deep.equal([{ kind: "ServiceAccount", name: FULLNAME, namespace: NAMESPACE }]);
      }
      expect((one(objs, "ClusterRoleBinding").roleRef as { name: string }).name).to.equal(cr.metadata.name);
      expect(podSpec(objs).serviceAccountName).to.equal(one(objs, "ServiceAccount").metadata.name);
    });

    it("aggregates TrainingRun and AgentWorkerPool access into admin/edit and view", () => {
      const edit = one(objs, "ClusterRole", `${FULLNAME}-edit`);
      expect(edit.metadata.labels).to.include({
        "rbac.authorization.k8s.io/aggregate-to-edit": "true",
        "rbac.authorization.k8s.io/aggregate-to-admin": "true",
      });
      const editRules = edit.rules as { resources: string[]; verbs: string[] }[];
      expect(editRules[0]!.resources).to.include.members(["trainingruns", "agentworkerpools"]);
      expect(editRules[0]!.verbs).to.include("create");
      expect(editRules[1]!.verbs, "status is the operator's").to.deep.equal(["get", "list", "watch"]);
      const view = one(objs, "ClusterRole", `${FULLNAME}-view`);
      expect(view.metadata.labels).to.include({ "rbac.authorization.k8s.io/aggregate-to-view": "true" });
      for (const r of view.rules as { verbs: string[] }[])
        expect(r.verbs).to.deep.equal(["get", "list", "watch"]);
      expect(find(render(["--set", "rbac.aggregateUserRoles=false"]), "ClusterRole")).to.have.length(1);
    });

    it("accepts a parent chart's global values and puts commonLabels on every object", () => {
      const r = runHelm(["lint", "--strict", CHART, "--set", "global.imageRegistry=reg.example.com"]);
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      const labelled = render(["--set", "global.x=1,commonLabels.team=ml"]);
      for (const o of labelled)
        expect(o.metadata.labels, `${o.kind} ${o.metadata.name}`).to.include({ team: "ml" });
    });

    it("grants no wildcards, no pods and no cluster-scoped resources", () => {
      const rules = [...find(objs, "ClusterRole"), ...find(objs, "Role")].flatMap(
        (r) => r.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[],
      );
      for (const r of rules) {
        expect([...r.apiGroups, ...r.resources, ...r.verbs]).not.to.include("*");
        expect(r.resources).not.to.include.members(["pods/exec", "nodes", "namespaces", "clusterroles"]);
      }
    });
  });

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

  describe("switches", () => {
    it("rbac.create=false and an existing ServiceAccount: no RBAC, no ServiceAccount, the named one is used", () => {
      const objs = render([
        "--set",
        "rbac.create=false,serviceAccount.create=false,serviceAccount.name=ops-sa",
      ]);
      for (const kind of ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"])
        expect(find(objs, kind), kind).to.have.length(0);
      expect(podSpec(objs).serviceAccountName).to.equal("ops-sa");
    });

    it("one replica without leader election: no PodDisruptionBudget, no Lease permissions", () => {
      const objs = render(["--set", "replicaCount=1,leaderElection.enabled=false"]);
      expect(find(objs, "PodDisruptionBudget")).to.have.length(0);
      expect(find(objs, "Role")).to.have.length(0);
      expect(env(podSpec(objs).containers[0]!).L0_OPERATOR_LEADER_ELECT).to.equal("false");
    });

    it("no metrics Service means no ServiceMonitor (it would select nothing)", () => {
      const objs = render([...MONITORING_APIS, "--set", "metrics.service.enabled=false"]);
      expect(find(objs, "Service")).to.have.length(0);
      expect(find(objs, "ServiceMonitor")).to.have.length(0);
      expect(find(objs, "PodMonitor")).to.have.length(2);
    });

    it("fullnameOverride names every object", () => {
      const objs = render(["--set", "fullnameOverride=l0"]);
      expect(one(objs, "Deployment").metadata.name).to.equal("l0");
      expect(one(objs, "ClusterRole", "l0").metadata.name).to.equal("l0");
      expect(one(objs, "ClusterRole", "l0-view").metadata.name).to.equal("l0-view");
      expect(one(objs, "Role").metadata.name).to.equal("l0-leader-election");
    });
  });

  describe("representative values", () => {
    let objs: K8sObject[];
    before(() => {
      objs = render(["--values", REPRESENTATIVE, ...MONITORING_APIS]);
    });

    it("every object passes its schema", async () => {
      for (const o of objs) await validate(o);
    });

    it("pins images by digest, uses the pull secret and the scheduling constraints", () => {
      const spec = podSpec(objs);
      const c = spec.containers[0]!;
      expect(c.image).to.equal(
        "registry.example.com/ml/l0-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      );
      expect(env(c).L0_OPERATOR_DEFAULT_WORKER_IMAGE).to.match(
        /^registry\.example\.com\/ml\/l0-worker@sha256:/,
      );
      expect(env(c).L0_OPERATOR_DEFAULT_TRAINER_IMAGE).to.equal(
        "registry.example.com/ml/l0-trainer:0.1.0-cuda12.4",
      );
      expect(env(c)).to.include({
        HTTPS_PROXY: "http://proxy.example.com:3128",
        L0_OPERATOR_LOG_LEVEL: "debug",
      });
      expect(spec.imagePullSecrets).to.deep.equal([{ name: "regcred" }]);
      expect(env(spec.containers[0]!).L0_OPERATOR_DEFAULT_IMAGE_PULL_SECRETS, "run pods too").to.equal(
        "regcred",
      );
      expect(spec.nodeSelector).to.include({ "kubernetes.io/os": "linux" });
      expect(spec.tolerations).to.have.length(1);
      expect(spec.affinity).to.have.key("nodeAffinity");
    });

    it("watch-namespace scoping: a Role and RoleBinding in the watched namespace and nothing cluster-wide", () => {
      expect(find(objs, "ClusterRole")).to.have.length(0);
      expect(find(objs, "ClusterRoleBinding")).to.have.length(0);
      const role = one(objs, "Role", FULLNAME);
      expect(role.metadata.namespace).to.equal("ml-team-a");
      expect(role.rules).to.deep.equal(plainRules(OPERATOR_RULES));
      expect(one(objs, "RoleBinding", FULLNAME).metadata.namespace).to.equal("ml-team-a");
      expect(one(objs, "Role", `${FULLNAME}-leader-election`).metadata.namespace).to.equal(NAMESPACE);
      expect(env(podSpec(objs).containers[0]!).L0_OPERATOR_NAMESPACE).to.equal("ml-team-a");
      for (const pm of find(objs, "PodMonitor"))
        expect((pm.spec as { namespaceSelector: unknown }).namespaceSelector).to.deep.equal({
          matchNames: ["ml-team-a"],
        });
    });

    it("puts the selector labels on the monitors and the dashboard in Grafana's namespace", () => {
      for (const o of [
        ...find(objs, "ServiceMonitor"),
        ...find(objs, "PodMonitor"),
        ...find(objs, "PrometheusRule"),
      ])
        expect(o.metadata.labels, o.metadata.name).to.include({ release: "kube-prometheus-stack" });
      const cm = one(objs, "ConfigMap");
      expect(cm.metadata.namespace).to.equal("monitoring");
      expect(cm.metadata.annotations).to.deep.equal({ grafana_folder: "L0" });
    });
  });

  describe("values.schema.json rejects bad values with the field named", () => {
    const cases: [string, string[], RegExp][] = [
      ["zero replicas", ["--set", "replicaCount=0"], /replicaCount/],
      ["a malformed digest", ["--set", "image.digest=sha256:xyz"], /image\.digest/],
      ["an unknown top-level key", ["--set", "replicas=2"], /replicas|Additional property/],
      ["an unknown log level", ["--set", "log.level=verbose"], /log\.level/],
      ["an invalid namespace name", ["--set", "watchNamespace=Team_A"], /watchNamespace/],
      [
        "privilege escalation",
        ["--set", "securityContext.allowPrivilegeEscalation=true"],
        /allowPrivilegeEscalation/,
      ],
      ["running as root", ["--set", "podSecurityContext.runAsNonRoot=false"], /runAsNonRoot/],
      [
        "a default image with neither tag nor digest",
        ["--set", "defaultImages.worker.tag="],
        /defaultImages/,
      ],
      ["a scrape interval that is not a duration", ["--set", "serviceMonitor.interval=often"], /interval/],
      [
        "several replicas without leader election",
        ["--set", "replicaCount=2,leaderElection.enabled=false"],
        /then|leaderElection/,
      ],
    ];
    for (const [name, args, field] of cases) {
      it(name, () => {
        const r = runHelm(["template", "l0", CHART, ...args]);
        expect(r.status, r.stdout).to.not.equal(0);
        expect(r.stderr).to.match(/values don't meet the specifications of the schema/);
        expect(r.stderr).to.match(field);
      });
    }
  });

  describe("generated files are in sync with their sources", () => {
    it("scripts/sync-chart.mjs --check finds nothing to update", () => {
      const r = spawnSync(process.execPath, [join(ROOT, "scripts/sync-chart.mjs"), "--check"], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(r.status, r.stderr).to.equal(0);
    });

    it("the chart's CRDs are byte-identical to crds/ and valid CustomResourceDefinitions", async () => {
      const top = readdirSync(join(ROOT, "crds")).filter((f) => f.endsWith(".yaml"));
      expect(readdirSync(join(CHART, "crds")).sort()).to.deep.equal(top.sort());
      for (const f of top) {
        expect(readFileSync(join(CHART, "crds", f), "utf8"), f).to.equal(
          readFileSync(join(ROOT, "crds", f), "utf8"),
        );
      }
      const crds = find(render(["--include-crds"]), "CustomResourceDefinition");
      expect(crds).to.have.length(top.length);
      for (const c of crds) await validate(c);
    });
  });

  it("refuses clusters older than the chart's kubeVersion (1.27)", () => {
    const r = runHelm(["template", "l0", CHART, "--kube-version", "1.26.5"]);
    expect(r.status).to.not.equal(0);
    expect(r.stderr).to.match(/kubeVersion/i);
    expect(runHelm(["template", "l0", CHART, "--kube-version", "1.27.0"]).status).to.equal(0);
  });

  it("values.yaml has no YAML 1.1 boolean keys and documents every key", () => {
    const text = readFileSync(join(CHART, "values.yaml"), "utf8");
    const lines = text.split("\n");
    lines.forEach((line, i) => {
      const key = /^\s*([A-Za-z0-9_.-]+):/.exec(line)?.[1];
      if (!key) return;
      expect(["y", "n", "yes", "no", "on", "off"], `line ${i + 1}`).not.to.include(key.toLowerCase());
      // A top-level key, or a leaf, is preceded by a comment (its own or its block's).
      if (/^\S/.test(line)) {
        const above = lines
          .slice(0, i)
          .reverse()
          .find((l) => l.trim() !== "");
        expect(above?.trim().startsWith("#"), `values.yaml line ${i + 1} (${key}) has no comment`).to.equal(
          true,
        );
      }
    });
  });

  it("NOTES.txt tells the user how to apply a first TrainingRun and where to look", () => {
    // helm template does not render NOTES.txt; render a copy under another name (shown by --debug).
    const dir = mkdtempSync(join(tmpdir(), "l0-notes-"));
    try {
      cpSync(CHART, join(dir, "c"), { recursive: true });
      renameSync(join(dir, "c/templates/NOTES.txt"), join(dir, "c/templates/notes.txt"));
      const r = runHelm([
        "template",
        "l0",
        join(dir, "c"),
        "-n",
        NAMESPACE,
        "--debug",
        "-s",
        "templates/notes.txt",
      ]);
      const text = r.stdout + r.stderr;
      expect(text).to.include("kubectl apply -n <namespace> -f examples/trainingrun.yaml");
      expect(text).to.include("--for=condition=Complete");
      expect(text).to.include(`rollout status deployment/${FULLNAME}`);
      expect(text).to.match(/does not serve monitoring\.coreos\.com\/v1/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
