// l0 local starts its processes with the env the operator gives the pods: the plans are derived
// from the operator's builders, and every variable there is rewritten, kept or dropped by name.
import { expect } from "chai";
import { type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { parseTrainingRun, parseWorkerPool } from "../../lib/run-config.js";
import { buildTrainerJob } from "../../operator/trainingrun/build.js";
import { buildInference, buildOwnedPool } from "../../operator/trainingrun/build-inference.js";
import { buildWorkerDeployment } from "../../operator/workerpool/build.js";
import {
  DROPPED,
  absolutize,
  inferencePlans,
  inputFiles,
  localEnv,
  trainerPlan,
  trainerPlans,
  workerPlan,
} from "../../local/plan.js";

const run = (extra: Record<string, unknown> = {}): ResolvedTrainingRun =>
  parseTrainingRun({
    apiVersion: "l0.dev/v1alpha1",
    kind: "TrainingRun",
    metadata: { name: "t", namespace: "default" },
    spec: {
      model: { name: "tiny" },
      dataset: { path: "data/train.jsonl", evalPath: "/abs/eval.jsonl" },
      workers: {
        replicas: 2,
        episodesPerWorker: 3,
        sandbox: { cpuSecondsPerEpisode: 7 },
        tools: { search: { backend: "local", corpusPath: "data/corpus.jsonl" } },
      },
      ...extra,
    },
  });
const paths = {
  runDir: "/r",
  runConfig: "/r/run.json",
  tokenFile: "/r/token",
  checkpointDir: "/r/checkpoints",
};
const ports = { hub: 1111, engine: 2222, metrics: 3333 };

describe("l0 local plans", () => {
  it("makes relative dataset, warm-start and corpus paths absolute, relative to the manifest", () => {
    const r = absolutize(run({ warmStart: { path: "data/demos.jsonl" } }), "/m");
    expect(r.spec.dataset.path).to.equal("/m/data/train.jsonl");
    expect(r.spec.dataset.evalPath).to.equal("/abs/eval.jsonl");
    expect(r.spec.warmStart!.path).to.equal("/m/data/demos.jsonl");
    expect(r.spec.workers!.tools!.search!.corpusPath).to.equal("/m/data/corpus.jsonl");
  });

  it("lists every input file with the field that names it, so l0 local checks them first", () => {
    expect(inputFiles(absolutize(run(), "/m"))).to.deep.equal([
      { field: "spec.dataset.path", path: "/m/data/train.jsonl" },
      { field: "spec.dataset.evalPath", path: "/abs/eval.jsonl" },
      { field: "spec.workers.tools.search.corpusPath", path: "/m/data/corpus.jsonl" },
    ]);
    const warm = absolutize(run({ warmStart: { path: "d.jsonl" } }), "/m");
    expect(inputFiles(warm).map((f) => f.field)).to.include("spec.warmStart.path");
  });

  it("gives the trainer every L0_TRAINER_* variable of the operator's Job, localized", () => {
    const r = run();
    const p = trainerPlan(r, paths, ports);
    const c = buildTrainerJob(r, 0).spec!.template.spec!.containers[0]!;
    expect(p.args).to.deep.equal(c.args);
    for (const e of c.env!) if (!(e.name in DROPPED)) expect(p.env).to.have.property(e.name);
    expect(p.env).to.include({
      L0_TRAINER_RUN_CONFIG: "/r/run.json",
      L0_TRAINER_TOKEN_FILE: "/r/token",
      L0_TRAINER_HUB_PORT: "1111",
      L0_TRAINER_ENGINE_PORT: "2222",
      L0_TRAINER_METRICS_PORT: "3333",
      L0_TRAINER_CHECKPOINT_DIR: "/r/checkpoints",
      L0_TRAINER_ATTEMPT: "0",
      L0_TRAINER_HOST: "127.0.0.1",
    });
    expect(p.env).to.include({
      NNODES: "1",
      NODE_RANK: "0",
      MASTER_ADDR: "127.0.0.1",
      L0_LEARNER_DEVICE: "cpu",
    });
    // A restart after a crash is the Job's next attempt.
    expect(trainerPlan(r, paths, ports, 2).env).to.include({ L0_TRAINER_ATTEMPT: "2" });
  });

  it("gives each worker the operator Deployment's env with loopback endpoints and its own id", () => {
    const r = absolutize(run(), "/m");
    const p = workerPlan(r, paths, ports, 1, "weak");
    const c = buildWorkerDeployment(parseWorkerPool(buildOwnedPool(r, 1)), r, 1).spec!.template.spec!
      .containers[0]!;
    expect(p.args).to.deep.equal(c.args);
    for (const e of c.env!) if (!(e.name in DROPPED)) expect(p.env).to.have.property(e.name);
    expect(p.env).to.include({
      L0_WORKER_HUB: "127.0.0.1:1111",
      L0_WORKER_ENGINE_URL: "http://127.0.0.1:2222",
      L0_WORKER_TOKEN_FILE: "/r/token",
      L0_WORKER_ID: "local-1",
      L0_WORKER_EPISODES: "3",
      L0_WORKER_CPU_SECONDS: "7",
      L0_WORKER_SEARCH_BACKEND: "local",
      L0_WORKER_SEARCH_CORPUS: "/m/data/corpus.jsonl",
      L0_WORKER_SANDBOX_MODE: "weak",
      L0_WORKER_METRICS_PORT: "0",
    });
  });

  it("with spec.inference: a weight service in the trainer, and per replica a CPU engine and a sidecar", () => {
    const r = run();
    r.spec.inference = { replicas: 2, engine: "sglang", gpus: 1, tensorParallel: 1, port: 8000 };
    const p3 = { ...ports, weights: 4444, engines: [5550, 5551] };
    const t = trainerPlan(r, paths, p3);
    expect(t.env).to.include({
      L0_TRAINER_WEIGHTS_PORT: "4444",
      L0_TRAINER_WEIGHTS_BULK_PORT: "0", // never the cluster's fixed port on a shared machine
      L0_TRAINER_EXPORT_DIR: "/r/weights-export",
    });
    expect(t.env).not.to.have.property("L0_TRAINER_ENGINE_PORT");
    // Workers spread over the replicas.
    const url = (i: number) => workerPlan(r, paths, p3, i, "weak").env.L0_WORKER_ENGINE_URL;
    expect([0, 1, 2].map(url)).to.deep.equal([
      "http://127.0.0.1:5550",
      "http://127.0.0.1:5551",
      "http://127.0.0.1:5550",
    ]);
    const { engine, sidecar } = inferencePlans(r, paths, p3, 1);
    expect(engine.args).to.deep.equal(["learner"]);
    expect(engine.env).to.include({ L0_LEARNER_ROLE: "inference", L0_LEARNER_ENGINE_PORT: "5551" });
    const sync = buildInference(r).deployment.spec!.template.spec!.containers.find(
      (c) => c.name === "weight-sync",
    )!;
    expect(sidecar.args).to.deep.equal(sync.args);
    for (const e of sync.env!) if (!(e.name in DROPPED)) expect(sidecar.env).to.have.property(e.name);
    expect(sidecar.env).to.include({
      L0_SIDECAR_WEIGHTS_ADDRESS: "127.0.0.1:4444",
      L0_SIDECAR_ENGINE: "local", // the CPU engine, whatever the cluster engine is
      L0_SIDECAR_ENGINE_URL: "http://127.0.0.1:5551",
      L0_SIDECAR_ROOT: "/r/inference-1/weights",
      L0_SIDECAR_TOKEN_FILE: "/r/token",
      L0_SIDECAR_ENGINE_ID: "local-inference-1",
      POD_IP: "127.0.0.1",
    });
  });

  it("runs one trainer process per trainer pod, the others following the first (spec.trainer.nodes)", () => {
    const r = run();
    r.spec.trainer.nodes = 2;
    const [lead, other, ...rest] = trainerPlans(r, paths, { ...ports, rendezvous: 4444 });
    expect(rest).to.have.length(0);
    expect(lead!.env).to.include({ NNODES: "2", NODE_RANK: "0", MASTER_PORT: "4444" });
    expect(other!.env).to.include({
      NNODES: "2",
      NODE_RANK: "1",
      MASTER_ADDR: "127.0.0.1",
      MASTER_PORT: "4444",
    });
    expect([other!.name, other!.logFile]).to.deep.equal(["trainer-1", "/r/logs/trainer-1.log"]);
  });

  it("speaks plaintext on loopback: no process is given the operator's TLS directory", () => {
    const r = run();
    r.spec.inference = { replicas: 1, engine: "sglang", gpus: 1, tensorParallel: 1, port: 8000 };
    const p1 = { ...ports, weights: 4444, engines: [5550] };
    const envs = [
      trainerPlan(r, paths, p1).env,
      workerPlan(r, paths, p1, 0, "weak").env,
      inferencePlans(r, paths, p1, 0).sidecar.env,
    ];
    // The operator does set them (each env above is derived from its pods).
    expect(buildTrainerJob(r, 0).spec!.template.spec!.containers[0]!.env).to.deep.include({
      name: "L0_TRAINER_TLS_DIR",
      value: "/var/run/l0",
    });
    const tls = Object.keys(DROPPED).filter((k) => k.endsWith("_TLS_DIR"));
    expect(tls).to.have.members(["L0_TRAINER_TLS_DIR", "L0_WORKER_TLS_DIR", "L0_SIDECAR_TLS_DIR"]);
    for (const env of envs) for (const k of tls) expect(env).to.not.have.property(k);
  });

  it("refuses a reference-valued variable it has no local value for, naming it", () => {
    expect(() =>
      localEnv([{ name: "X", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }], {}),
    ).to.throw(/no local value for X/);
    expect(
      localEnv(
        [
          { name: "A", value: "1" },
          { name: "L0_WORKER_SEARCH_KEY_FILE", value: "/secret/key" },
        ],
        {},
        { B: "2" },
      ),
    ).to.deep.equal({
      A: "1",
      B: "2",
    });
  });
});
