// The chart's values: switches, the representative values file (digests, pull secrets, scheduling,
// watch-namespace scoping), and values.schema.json rejecting bad values with the field named.
import { expect } from "chai";
import { OPERATOR_RULES } from "../../operator/rbac.js";
import {
  CHART,
  MONITORING_APIS,
  NAMESPACE,
  type K8sObject,
  find,
  helm,
  one,
  render,
  runHelm,
  validate,
} from "./helm.js";
import { FULLNAME, REPRESENTATIVE, env, plainRules, podSpec } from "./operator-chart.js";

describe("chart: l0-operator", function () {
  this.timeout(60_000);
  before(() => helm());
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
});
