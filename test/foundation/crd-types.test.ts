// The CRD pipeline for real: types generated from crds/*.yaml type-check against objects
// built here (a schema change that breaks them fails `npm run typecheck`), and the API
// coordinates come from the YAML.
import { readFileSync, readdirSync } from "node:fs";
import { expect } from "chai";
import { parse } from "yaml";
import { CRDS, type AgentWorkerPool, type TrainingRun } from "../../gen/crds/index.js";

describe("generated CRD types", () => {
  it("types a TrainingRun and an AgentWorkerPool as the schema says", () => {
    const run: TrainingRun = {
      apiVersion: "l0.dev/v1alpha1",
      kind: "TrainingRun",
      metadata: { name: "qa", namespace: "default" },
      spec: {
        model: { name: "tiny" },
        dataset: { path: "data/train.jsonl" },
        algorithm: { name: "grpo", groupSize: 4 },
      },
    };
    const pool: AgentWorkerPool = { spec: { hubRef: { name: run.metadata!.name! }, episodesPerWorker: 8 } };
    const bad: TrainingRun = {
      spec: {
        model: { name: "x" },
        dataset: { path: "p" },
        // @ts-expect-error: algorithm.name is an enum in the schema
        algorithm: { name: "ppo" },
      },
    };
    expect(bad.spec.algorithm?.name).to.equal("ppo");
    expect(pool.spec.hubRef.name).to.equal("qa");
  });

  it("lists every CRD in crds/ with its group, version and plural", () => {
    const files = readdirSync("crds").filter((f) => f.endsWith(".yaml"));
    const kinds = files.map(
      (f) =>
        (parse(readFileSync(`crds/${f}`, "utf8")) as { spec: { names: { kind: string } } }).spec.names.kind,
    );
    expect(Object.keys(CRDS).sort()).to.deep.equal(kinds.sort());
    expect(CRDS.TrainingRun).to.include({
      group: "l0.dev",
      version: "v1alpha1",
      plural: "trainingruns",
      namespaced: true,
    });
  });
});
