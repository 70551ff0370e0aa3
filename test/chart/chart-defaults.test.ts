// The Helm chart rendered by the real helm with its default values: lint, schema validation of
// every object, RBAC exactly as operator/rbac.ts, the hardened operator pod.
import { expect } from "chai";
import { LEADER_ELECTION_RULES, OPERATOR_RULES } from "../../operator/rbac.js";
import { CHART, NAMESPACE, type K8sObject, find, helm, one, render, runHelm, validate } from "./helm.js";
import { FULLNAME, REPRESENTATIVE, env, plainRules, podSpec } from "./operator-chart.js";

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
});
