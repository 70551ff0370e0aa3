// The KEDA example stays true to the repository: it targets the AgentWorkerPool's scale
// subresource, turns the operator's autoscaler off for that pool, queries the backlog metric the
// hub exports under the job the chart scrapes, and carries the operator's default behavior.
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { parseAllDocuments } from "yaml";
import { DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP } from "./builders.js";
import { defaultValidator } from "../../lib/run-config.js";

type Doc = Record<string, any>;
const docs = parseAllDocuments(readFileSync("examples/keda/scaledobject.yaml", "utf8")).map(
  (d) => d.toJS() as Doc,
);
const crd = parseAllDocuments(readFileSync("crds/l0.dev_agentworkerpools.yaml", "utf8"))[0]!.toJS() as Doc;

describe("KEDA ScaledObject example", () => {
  const pool = docs.find((d) => d.kind === "AgentWorkerPool")!;
  const so = docs.find((d) => d.kind === "ScaledObject")!;

  it("targets the pool through a scale subresource the CRD has", () => {
    const version = crd.spec.versions.find((v: Doc) => v.storage);
    expect(so.spec.scaleTargetRef).to.deep.equal({
      apiVersion: `${crd.spec.group}/${version.name}`,
      kind: crd.spec.names.kind,
      name: pool.metadata.name,
    });
    expect(version.subresources.scale.specReplicasPath).to.equal(".spec.replicas");
    expect(version.subresources.scale.labelSelectorPath).to.be.a("string");
    expect(pool.spec.autoscaling.enabled).to.equal(false);
    expect(defaultValidator().validate("AgentWorkerPool", pool).violations).to.deep.equal([]);
  });

  it("reads the hub's backlog gauge for the pool's run", () => {
    const hub = readFileSync("images/trainer/hub/metrics.ts", "utf8");
    const [trigger] = so.spec.triggers;
    expect(hub).to.contain(`name: "l0_rollout_backlog"`);
    expect(trigger.metadata.query).to.contain("l0_rollout_backlog{");
    expect(trigger.metadata.query).to.contain(`run="${pool.spec.hubRef.name}"`);
    expect(trigger.metadata.query).to.contain(`namespace="${pool.metadata.namespace}"`);
    expect(Number(trigger.metadata.threshold)).to.equal(pool.spec.episodesPerWorker);
  });

  it("uses the operator's default behavior", () => {
    const b = so.spec.advanced.horizontalPodAutoscalerConfig.behavior;
    expect(b.scaleUp).to.deep.equal(DEFAULT_SCALE_UP);
    expect(b.scaleDown).to.deep.equal(DEFAULT_SCALE_DOWN);
  });
});
