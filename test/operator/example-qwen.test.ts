// examples/qwen2.5-7b.yaml as `l0 render` shows it: what issue 20's "done when" asks of a real
// GPU run, asserted on the rendered objects (the operator's own builders, operator/render.ts).
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { type KubernetesObject } from "@kubernetes/client-node";
import { renderManifest } from "../../operator/render.js";

type K = KubernetesObject & Record<string, any>;
const objs = renderManifest(readFileSync("examples/qwen2.5-7b.yaml", "utf8"), "qwen2.5-7b.yaml", {
  namespace: "ml",
}) as K[];
const get = (kind: string, name: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata!.name === name);
  if (!o)
    throw new Error(`${kind}/${name} not rendered: ${objs.map((x) => `${x.kind}/${x.metadata!.name}`)}`);
  return o;
};
const envOf = (c: any) => Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value ?? e.valueFrom]));
const QUEUE = "kueue.x-k8s.io/queue-name";

describe("examples/qwen2.5-7b.yaml rendered", () => {
  const job = get("Job", "qwen7b-qa-trainer-0");
  const pod = job.spec.template.spec;
  const trainer = pod.containers[0];

  it("trainer: 2 nodes x 8 GPUs, one learner per GPU, the rendezvous env", () => {
    expect(job.spec).to.include({ completions: 2, parallelism: 2, completionMode: "Indexed" });
    expect(trainer.resources.limits["nvidia.com/gpu"]).to.equal("8");
    const env = envOf(trainer);
    expect(env).to.include({ NNODES: "2", NPROC_PER_NODE: "8", MASTER_PORT: "29500" });
    expect(env.MASTER_ADDR).to.equal("qwen7b-qa-trainer-0-0.qwen7b-qa-trainer");
    expect(env.NODE_RANK.fieldRef.fieldPath).to.match(/job-completion-index/);
  });

  it("trainer: the dataset volume where spec.dataset points, and the HF token Secret", () => {
    expect(pod.volumes).to.deep.include({
      name: "data",
      persistentVolumeClaim: { claimName: "qa-data", readOnly: true },
    });
    expect(trainer.volumeMounts).to.deep.include({ name: "data", mountPath: "/data/qa", readOnly: true });
    expect(envOf(trainer).HF_TOKEN).to.deep.equal({ secretKeyRef: { name: "hf-token", key: "HF_TOKEN" } });
    expect(pod.priorityClassName).to.equal("training-high");
    // The operator's security settings are kept.
    expect(pod.securityContext.runAsNonRoot).to.equal(true);
    expect(trainer.securityContext.readOnlyRootFilesystem).to.equal(true);
  });

  it("vLLM: 4 replicas x TP 2, started on the sidecar's weights directory, dev mode, /dev/shm", () => {
    const d = get("Deployment", "qwen7b-qa-inference");
    expect(d.spec.replicas).to.equal(4);
    const spec = d.spec.template.spec;
    const engine = spec.containers.find((c: any) => c.name === "engine");
    const cmd: string[] = engine.command;
    expect(cmd.slice(cmd.indexOf("vllm"), cmd.indexOf("vllm") + 3)).to.deep.equal([
      "vllm",
      "serve",
      "/weights/current",
    ]);
    const args = cmd.join(" ");
    expect(args).to.include("--served-model-name Qwen/Qwen2.5-7B-Instruct");
    expect(args).to.include("--tensor-parallel-size 2");
    expect(args).to.include("--max-model-len 16384");
    expect(envOf(engine).VLLM_SERVER_DEV_MODE).to.equal("1");
    expect(engine.volumeMounts).to.deep.include({ name: "dshm", mountPath: "/dev/shm" });
    expect(spec.volumes).to.deep.include({ name: "dshm", emptyDir: { medium: "Memory" } });
    expect(engine.resources.limits["nvidia.com/gpu"]).to.equal("2");
    const init = spec.initContainers[0];
    expect(envOf(init)).to.include({ L0_MODEL: "Qwen/Qwen2.5-7B-Instruct", L0_MODEL_REVISION: "main" });
    expect(envOf(init).HF_TOKEN).to.deep.equal({ secretKeyRef: { name: "hf-token", key: "HF_TOKEN" } });
  });

  it("Kueue: the queue label on the trainer Job (created suspended) and the Deployments", () => {
    expect(job.metadata!.labels![QUEUE]).to.equal("team-gpu");
    expect(job.spec.suspend).to.equal(true);
    expect(get("Deployment", "qwen7b-qa-inference").metadata!.labels![QUEUE]).to.equal("team-gpu");
    expect(get("Deployment", "qwen7b-qa-workers").metadata!.labels![QUEUE]).to.equal("team-gpu");
  });

  it("a checkpoint PVC owned by the run, mounted by the trainer", () => {
    const pvc = get("PersistentVolumeClaim", "qwen7b-qa-checkpoints");
    expect(pvc.spec).to.deep.include({ accessModes: ["ReadWriteMany"] });
    expect(pvc.spec.resources.requests.storage).to.equal("500Gi");
    expect(pvc.metadata!.ownerReferences![0]!.kind).to.equal("TrainingRun");
    expect(pod.volumes).to.deep.include({
      name: "checkpoints",
      persistentVolumeClaim: { claimName: "qwen7b-qa-checkpoints" },
    });
  });

  it("workers: the search key from its Secret, in the worker only", () => {
    const w = get("Deployment", "qwen7b-qa-workers").spec.template.spec;
    expect(w.volumes).to.deep.include({
      name: "search-key",
      secret: { secretName: "search-api-key", defaultMode: 0o440 },
    });
    expect(envOf(w.containers[0]).L0_WORKER_SEARCH_KEY_FILE).to.equal("/var/run/l0-search/apiKey");
    expect(objs.every((o) => o.metadata!.namespace === "ml")).to.equal(true);
  });
});
