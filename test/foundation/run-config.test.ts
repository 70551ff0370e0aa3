// TrainingRun manifests are validated against crds/ with the API server's defaults, and
// errors name the field.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { L0Error } from "../../lib/errors.js";
import { parseTrainingRun, readTrainingRun } from "../../lib/run-config.js";

const minimal = {
  metadata: { name: "qa" },
  spec: { model: { name: "tiny" }, dataset: { path: "train.jsonl" }, workers: {} },
};

describe("TrainingRun config", () => {
  it("applies nested defaults from the schema", () => {
    const run = parseTrainingRun(minimal);
    expect(run.spec.algorithm).to.include({
      name: "reinforce_pp",
      groupSize: 8,
      batchSize: 8,
      dynamicSampling: true,
    });
    expect(run.spec.reward).to.include({ exactMatch: 0.5, f1: 0.4, hasAnswer: 0.1, format: 0.125 });
    expect(run.spec.agent?.tools).to.deep.equal(["search", "notepad"]);
    expect(run.spec.dataset.questionField).to.equal("question");
  });

  const cases: [string, (s: any) => void, string][] = [
    ["an out-of-range group size", (s) => (s.algorithm = { groupSize: 0 }), "spec.algorithm.groupSize"],
    ["an unknown algorithm", (s) => (s.algorithm = { name: "ppo" }), "spec.algorithm.name: must be one of"],
    [
      "a zero learning rate (exclusive minimum)",
      (s) => (s.algorithm = { learningRate: 0 }),
      "spec.algorithm.learningRate",
    ],
    ["a missing dataset path", (s) => (s.dataset = {}), "spec.dataset.path: is required"],
    ["a misspelled field", (s) => (s.agent = { maxTurn: 3 }), "spec.agent.maxTurn: is not a known field"],
    ["a string where a number goes", (s) => (s.reward = { f1: "high" }), "spec.reward.f1: must be number"],
  ];
  for (const [name, mutate, message] of cases) {
    it(`rejects ${name}, naming the field`, () => {
      const obj = structuredClone(minimal) as any;
      mutate(obj.spec);
      expect(() => parseTrainingRun(obj, "run.yaml")).to.throw(L0Error, `run.yaml: ${message}`);
    });
  }

  it("reads YAML files and names the file when it is broken", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-run-"));
    writeFileSync(
      join(dir, "ok.yaml"),
      "kind: TrainingRun\nmetadata: {name: a}\nspec:\n  model: {name: tiny}\n  dataset: {path: d.jsonl}\n  workers: {}\n",
    );
    writeFileSync(join(dir, "bad.yaml"), "spec: [unclosed\n");
    expect(readTrainingRun(join(dir, "ok.yaml")).spec.algorithm?.maxSteps).to.equal(100);
    expect(() => readTrainingRun(join(dir, "bad.yaml"))).to.throw(L0Error, /bad\.yaml: not valid YAML/);
    expect(() => readTrainingRun(join(dir, "missing.yaml"))).to.throw(L0Error, /missing\.yaml: cannot read/);
  });
});
