// examples/l0-qwen2.5-7b.yaml, the paper's 7B recipe: it passes the operator's own admission path
// (renderManifest resolves it with validateRun: schema, defaults, CEL rules, preflights) and the
// reference's settings (cmriat/l0 train_qa_reinforcepp_dynamic_7b.sh, trainer.yaml) reach the
// trainer's run.json and the pods as written.
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { type KubernetesObject } from "@kubernetes/client-node";
import { renderManifest } from "../../operator/render.js";

type K = KubernetesObject & Record<string, any>;
const objs = renderManifest(readFileSync("examples/l0-qwen2.5-7b.yaml", "utf8"), "l0-qwen2.5-7b.yaml", {
  namespace: "ml",
}) as K[];
const get = (kind: string, name: string): K => {
  const o = objs.find((x) => x.kind === kind && x.metadata!.name === name);
  if (!o) throw new Error(`${kind}/${name} not rendered`);
  return o;
};
const run = JSON.parse(get("ConfigMap", "l0-qwen7b-config").data["run.json"]);

describe("examples/l0-qwen2.5-7b.yaml (the paper's recipe) rendered", () => {
  const reference: [string, unknown][] = [
    ["spec.model.name", "Qwen/Qwen2.5-7B-Instruct"],
    ["spec.algorithm.name", "reinforce_pp"],
    ["spec.algorithm.groupSize", 4],
    ["spec.algorithm.batchSize", 64],
    ["spec.algorithm.learningRate", 1e-6],
    ["spec.algorithm.klCoef", 0.001],
    ["spec.algorithm.clipLow", 0.2],
    ["spec.algorithm.clipHigh", 0.25],
    ["spec.algorithm.oldLogprobs", "recompute"],
    ["spec.algorithm.gamma", 0.95],
    ["spec.algorithm.dynamicSampling", true],
    ["spec.algorithm.maxOversample", 3],
    ["spec.agent.maxTurns", 8],
    ["spec.agent.maxTokensPerTurn", 3072],
    ["spec.agent.contextBudget", 16384],
    ["spec.agent.temperature", 1],
    ["spec.agent.episodeTimeoutSeconds", 240],
    ["spec.dataset.evalEvery", 50],
    ["spec.dataset.evalSize", 0],
    ["spec.reward.exactMatch", 0.5],
    ["spec.checkpoint.everySteps", 10],
  ];
  for (const [path, want] of reference)
    it(`run.json ${path} = ${JSON.stringify(want)}`, () => {
      const got = path.split(".").reduce((o: any, k) => o?.[k], run);
      expect(got).to.deep.equal(want);
    });

  it("trainer: 2 nodes x 8 GPUs reading the dataset PVC; vLLM at TP 2 with room for prompt + one turn", () => {
    const job = get("Job", "l0-qwen7b-trainer-0");
    expect(job.spec).to.include({ completions: 2, parallelism: 2 });
    const trainer = job.spec.template.spec.containers[0];
    expect(trainer.resources.limits["nvidia.com/gpu"]).to.equal("8");
    expect(trainer.volumeMounts).to.deep.include({ name: "data", mountPath: "/data/qa", readOnly: true });
    const engine = get("Deployment", "l0-qwen7b-inference").spec.template.spec.containers.find(
      (c: any) => c.name === "engine",
    );
    const args = engine.command.join(" ");
    expect(args).to.include("--tensor-parallel-size 2").and.to.include("--max-model-len 19456");
    expect(get("Deployment", "l0-qwen7b-workers").spec.replicas).to.equal(2);
  });
});
