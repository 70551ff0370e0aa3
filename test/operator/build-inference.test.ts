// Table tests of the separate inference pods a TrainingRun asks for (no server): the engine and
// weights sidecar containers, the model fetch, and the inference NetworkPolicy.
import { expect } from "chai";
import { buildInference, buildInferenceNetworkPolicy } from "../../operator/trainingrun/build-inference.js";
import { makeRun } from "./objects.js";

describe("operator builders: TrainingRun children", () => {
  it("inference: engine on the sidecar's weights link, GPUs, sidecar with the hub address", () => {
    const run = makeRun({
      model: { name: "Qwen/Qwen2.5-7B-Instruct", revision: "abc123", tokenSecretRef: { name: "hf" } },
      inference: { engine: "vllm", gpus: 4, tensorParallel: 4, args: ["--max-model-len", "8192"] },
    });
    const pod = buildInference(run).deployment.spec!.template.spec!;
    const [engine, sidecar] = pod.containers;
    expect(engine!.image).to.equal("vllm/vllm-openai:v0.11.0");
    const cmd = engine!.command!;
    // Waits for the first version, then `vllm serve /weights/current` (what reload_weights re-reads).
    expect(cmd.slice(0, 2)).to.deep.equal(["/bin/sh", "-c"]);
    expect(cmd.slice(4, 7)).to.deep.equal(["vllm", "serve", "/weights/current"]);
    expect(cmd.join(" ")).to.include("--served-model-name Qwen/Qwen2.5-7B-Instruct");
    expect(cmd.join(" ")).to.include("--tensor-parallel-size 4");
    expect(cmd.slice(-2), "engine args from the spec, last").to.deep.equal(["--max-model-len", "8192"]);
    expect(engine!.env).to.deep.include({ name: "VLLM_SERVER_DEV_MODE", value: "1" });
    expect(engine!.volumeMounts).to.deep.include({ name: "dshm", mountPath: "/dev/shm" });
    expect(pod.volumes).to.deep.include({ name: "dshm", emptyDir: { medium: "Memory" } });
    expect(engine!.resources!.limits!["nvidia.com/gpu"]).to.equal("4");
    expect(sidecar!.args).to.deep.equal(["sidecar"]);
    const env = (name: string) => sidecar!.env!.find((e) => e.name === name)?.value;
    expect(env("L0_SIDECAR_WEIGHTS_ADDRESS")).to.equal("qa-hub:7071");
    expect(env("L0_SIDECAR_ENGINE")).to.equal("vllm");
    expect(env("L0_SIDECAR_BASE_MODEL_DIR")).to.equal("/model");
    // The init step fetches config and tokenizer at the run's revision, with the run's token.
    const init = pod.initContainers![0]!;
    expect(init.env).to.deep.include({ name: "L0_MODEL_REVISION", value: "abc123" });
    expect(init.env).to.deep.include({
      name: "HF_TOKEN",
      valueFrom: { secretKeyRef: { name: "hf", key: "HF_TOKEN" } },
    });
    const s = buildInference(makeRun({ inference: { engine: "sglang", image: "sg:1" } })).deployment.spec!
      .template.spec!.containers[0]!;
    expect(s.command!.slice(4, 9)).to.deep.equal([
      "python3",
      "-m",
      "sglang.launch_server",
      "--model-path",
      "/weights/current",
    ]);
    expect(
      s.env!.map((e) => e.name),
      "dev mode is vLLM's",
    ).to.not.include("VLLM_SERVER_DEV_MODE");
  });

  it("inference: SGLang is started with --enable-metrics (its /metrics), vLLM needs no flag", () => {
    const cmd = (engine: string) =>
      buildInference(makeRun({ inference: { engine, image: "e:1", args: ["--x"] } })).deployment.spec!
        .template.spec!.containers[0]!.command!;
    expect(cmd("sglang")).to.include("--enable-metrics");
    expect(cmd("sglang").slice(-1), "the spec's own args stay last").to.deep.equal(["--x"]);
    expect(cmd("vllm")).not.to.include("--enable-metrics");
  });

  it("inference: a model on a volume is not fetched, the sidecar reads its files there", () => {
    const pod = buildInference(makeRun({ model: { name: "/models/qwen" }, inference: {} })).deployment.spec!
      .template.spec!;
    expect(pod.initContainers).to.equal(undefined);
    const sidecar = pod.containers[1]!;
    expect(sidecar.env).to.deep.include({ name: "L0_SIDECAR_BASE_MODEL_DIR", value: "/models/qwen" });
  });

  it("inference: a built-in model is not fetched and has no base model dir (its exports are complete)", () => {
    for (const name of ["tiny", "tiny-qwen2"]) {
      const pod = buildInference(makeRun({ model: { name }, inference: {} })).deployment.spec!.template.spec!;
      expect(pod.initContainers, name).to.equal(undefined);
      const env = pod.containers[1]!.env!.map((e) => e.name);
      expect(env, name).to.not.include("L0_SIDECAR_BASE_MODEL_DIR");
    }
  });

  it("inference NetworkPolicy: engine port from the run's workers only, peers from inference pods", () => {
    const np = buildInferenceNetworkPolicy(makeRun({ inference: { port: 9000 } }));
    expect(np.metadata!.ownerReferences![0]!.uid).to.equal("run-uid");
    expect(np.spec!.podSelector!.matchLabels).to.deep.equal({
      "l0.dev/run": "qa",
      "app.kubernetes.io/component": "inference",
    });
    type Peer = { podSelector?: { matchLabels: Record<string, string> }; namespaceSelector?: object };
    const ingress = np.spec!.ingress as unknown as { from?: Peer[]; ports: { port: number }[] }[];
    const rules = ingress.map((r) => ({
      port: r.ports.map((p) => p.port).join("+"),
      from: r.from?.map((f) => f.podSelector!.matchLabels["app.kubernetes.io/component"]),
    }));
    expect(rules).to.deep.equal([
      { port: "9000", from: ["workers"] },
      { port: "7072+7074", from: ["inference"] }, // peers' gRPC and bulk channel alike
      { port: "9092", from: undefined },
    ]);
    expect(
      ingress.every((r) => r.from === undefined || r.from.every((f) => !f.namespaceSelector)),
      "no other namespace reaches the engine",
    ).to.equal(true);
  });
});
