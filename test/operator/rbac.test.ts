// The operator's RBAC rules against what its reconcilers do (no server).
import { expect } from "chai";
import { LEADER_ELECTION_RULES, OPERATOR_RULES, allows } from "../../operator/rbac.js";
import { RESOURCES } from "../../operator/runtime/kube.js";

describe("operator RBAC", () => {
  it("allows every verb the reconcilers use on every kind they touch; pods only list+patch, no nodes", () => {
    const plural = (k: keyof typeof RESOURCES) => RESOURCES[k];
    for (const k of [
      "TrainingRun",
      "AgentWorkerPool",
      "ConfigMap",
      "Service",
      "ServiceAccount",
      "Job",
      "Deployment",
      "NetworkPolicy",
      "PodDisruptionBudget",
    ] as const)
      for (const verb of ["get", "list", "watch", "create", "patch", "delete"])
        expect(allows(OPERATOR_RULES, plural(k).group, plural(k).plural, verb), `${verb} ${k}`).to.equal(
          true,
        );
    // patch: once, to add the TLS material to a token Secret from before TLS (hygiene.test.ts).
    for (const verb of ["get", "list", "watch", "create", "patch", "delete"])
      expect(allows(OPERATOR_RULES, "", "secrets", verb)).to.equal(true);
    expect(allows(OPERATOR_RULES, "", "secrets", "update"), "no Secret is replaced whole").to.equal(false);
    expect(allows(OPERATOR_RULES, "l0.dev", "trainingruns/status", "update")).to.equal(true);
    expect(allows(OPERATOR_RULES, "", "events", "create")).to.equal(true);
    for (const verb of ["get", "watch", "create", "update", "delete"])
      expect(allows(OPERATOR_RULES, "", "pods", verb), `pods ${verb}`).to.equal(false);
    expect(
      allows(OPERATOR_RULES, "", "pods", "list") && allows(OPERATOR_RULES, "", "pods", "patch"),
    ).to.equal(true);
    expect(allows(OPERATOR_RULES, "", "nodes", "list")).to.equal(false);
    expect(OPERATOR_RULES.some((r) => r.verbs.includes("*") || r.resources.includes("*"))).to.equal(false);
    for (const verb of ["get", "create", "update"])
      expect(allows(LEADER_ELECTION_RULES, "coordination.k8s.io", "leases", verb)).to.equal(true);
  });
});
