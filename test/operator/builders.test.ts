// Table tests of the pure builders, policies and status functions (no server).
import { expect } from "chai";
import { type ResolvedAgentWorkerPool, type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { parseTrainingRun } from "../../lib/run-config.js";
import { LEADER_ELECTION_RULES, OPERATOR_RULES, allows } from "../../operator/rbac.js";
import { RESOURCES } from "../../operator/runtime/kube.js";
import {
  buildConfigMap,
  buildHubService,
  buildTokenSecret,
  buildTrainerJob,
  buildTrainerNetworkPolicy,
  buildTrainerService,
} from "../../operator/trainingrun/build.js";
import {
  buildInference,
  buildInferenceNetworkPolicy,
  buildOwnedPool,
  inlineReplicas,
} from "../../operator/trainingrun/build-inference.js";
import { trainerAction, trainerFailureFromPods, viewJob } from "../../operator/trainingrun/policy.js";
import {
  computeRunStatus,
  phaseAndConditions,
  type RunObservation,
} from "../../operator/trainingrun/status.js";
import {
  buildNetworkPolicy,
  buildPdb,
  buildServiceAccount,
  buildWorkerDeployment,
  sandboxSecurity,
} from "../../operator/workerpool/build.js";
import { computePoolStatus, stopReason } from "../../operator/workerpool/status.js";
import { validatePool, validateRun } from "../../operator/validate.js";

/** A validated run with defaults, like the reconciler sees it. */
function makeRun(spec: Record<string, unknown> = {}, name = "qa"): ResolvedTrainingRun {
  const r = parseTrainingRun({
    apiVersion: "l0.dev/v1alpha1",
    kind: "TrainingRun",
    metadata: { name, namespace: "ns" },
    spec: { model: { name: "tiny" }, dataset: { path: "/d.jsonl" }, workers: {}, ...spec },
  });
  return { ...r, metadata: { name, namespace: "ns", uid: "run-uid", generation: 1 } };
}
function makePool(spec: Record<string, unknown> = {}): ResolvedAgentWorkerPool {
  const v = validatePool({
    apiVersion: "l0.dev/v1alpha1",
    kind: "AgentWorkerPool",
    metadata: { name: "p", namespace: "ns", uid: "pool-uid" },
    spec: { hubRef: { name: "qa" }, ...spec },
  } as never);
  if ("invalid" in v) throw new Error(v.invalid.message);
  return v.pool;
}

describe("operator builders: TrainingRun children", () => {
  it("the token Secret holds the given token and TLS material and is owned by the run", () => {
    const s = buildTokenSecret(makeRun(), "tok", { "ca.crt": "Y2E=" });
    expect(Buffer.from(s.data!.token!, "base64").toString()).to.equal("tok");
    expect(s.data!["ca.crt"]).to.equal("Y2E=");
    expect(s.metadata!.ownerReferences![0]).to.include({ uid: "run-uid", controller: true });
  });

  it("run.json is the validated run, stable across rebuilds", () => {
    const a = buildConfigMap(makeRun()).data!["run.json"]!;
    expect(a).to.equal(buildConfigMap(makeRun()).data!["run.json"]);
    const parsed = JSON.parse(a);
    expect(parsed.kind).to.equal("TrainingRun");
    expect(parsed.spec.algorithm.groupSize).to.equal(8);
    expect(parsed.status).to.equal(undefined);
  });

  const jobCases: [string, Record<string, unknown>, (j: any) => void][] = [
    [
      "one CPU node",
      { trainer: { gpusPerNode: 0 } },
      (j) => {
        expect(j.spec).to.include({
          completions: 1,
          parallelism: 1,
          backoffLimit: 0,
          completionMode: "Indexed",
          suspend: false,
        });
        expect(j.spec.template.spec.containers[0].resources).to.deep.equal({});
      },
    ],
    [
      "two GPU nodes with selector and tolerations",
      {
        trainer: {
          nodes: 2,
          gpusPerNode: 8,
          nodeSelector: { pool: "gpu" },
          tolerations: [{ key: "nvidia.com/gpu", operator: "Exists" }],
        },
      },
      (j) => {
        expect(j.spec).to.include({ completions: 2, parallelism: 2 });
        const c = j.spec.template.spec.containers[0];
        expect(c.resources.limits["nvidia.com/gpu"]).to.equal("8");
        expect(j.spec.template.spec.nodeSelector).to.deep.equal({ pool: "gpu" });
        expect(j.spec.template.spec.tolerations).to.have.length(1);
        expect(c.env.find((e: any) => e.name === "MASTER_ADDR").value).to.equal("qa-trainer-3-0.qa-trainer");
      },
    ],
    [
      "suspended, with a PVC and a TTL",
      { suspend: true, checkpoint: { claimName: "ck" }, trainer: { ttlSecondsAfterFinished: 60 } },
      (j) => {
        expect(j.spec.suspend).to.equal(true);
        expect(j.spec.ttlSecondsAfterFinished).to.equal(60);
        expect(
          j.spec.template.spec.volumes.find((v: any) => v.name === "checkpoints").persistentVolumeClaim
            .claimName,
        ).to.equal("ck");
      },
    ],
  ];
  for (const [what, spec, check] of jobCases)
    it(`trainer Job: ${what}`, () => {
      const j = buildTrainerJob(makeRun(spec), 3);
      expect(j.metadata!.name).to.equal("qa-trainer-3");
      const pod = j.spec!.template.spec!;
      expect(pod.restartPolicy).to.equal("Never");
      expect(pod.automountServiceAccountToken).to.equal(false);
      expect(pod.subdomain).to.equal("qa-trainer");
      expect(pod.containers[0]!.securityContext).to.deep.include({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
      });
      check(j);
    });

  it("headless trainer Service for rendezvous; hub Service on rank 0 with the colocated engine", () => {
    const h = buildTrainerService(makeRun());
    expect(h.spec!.clusterIP).to.equal("None");
    expect(h.spec!.ports!.map((p) => p.name)).to.deep.equal(["hub", "metrics", "engine", "rendezvous"]);
    const hub = buildHubService(makeRun());
    expect(hub.spec!.selector!["batch.kubernetes.io/job-completion-index"]).to.equal("0");
    expect(
      buildHubService(makeRun({ inference: {} })).spec!.ports!.map((p) => p.name),
      "engine elsewhere",
    ).to.deep.equal(["hub", "metrics", "weights", "weights-bulk"]);
  });

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

  it("trainer NetworkPolicy: engine from workers, weights from inference, any port between trainers", () => {
    type Peer = { podSelector?: { matchLabels: Record<string, string> }; namespaceSelector?: object };
    const rules = (r: ResolvedTrainingRun) => {
      const np = buildTrainerNetworkPolicy(r);
      expect(np.metadata!.ownerReferences![0]!.uid).to.equal("run-uid");
      expect(np.spec!.podSelector!.matchLabels).to.deep.equal({
        "l0.dev/run": "qa",
        "app.kubernetes.io/component": "trainer",
      });
      const ingress = np.spec!.ingress as unknown as { from?: Peer[]; ports?: { port: number }[] }[];
      expect(
        ingress.every((i) =>
          (i.from ?? []).every(
            (f) => !f.namespaceSelector && f.podSelector!.matchLabels["l0.dev/run"] === "qa",
          ),
        ),
      ).to.equal(true);
      return ingress.map((i) => ({
        port: i.ports?.map((p) => p.port).join("+") ?? "any",
        from: i.from?.map((f) => f.podSelector!.matchLabels["app.kubernetes.io/component"]),
      }));
    };
    // Colocated engine: only the run's workers reach it; the hub (token-authenticated, read by
    // the operator from its namespace) and metrics stay open.
    expect(rules(makeRun({ trainer: { hubPort: 7000, enginePort: 8100 } }))).to.deep.equal([
      { port: "7000", from: undefined },
      { port: "9090", from: undefined },
      { port: "8100", from: ["workers"] },
      { port: "any", from: ["trainer"] }, // rendezvous, then NCCL on ephemeral ports
    ]);
    // Separate inference: no engine here; the weights port only for the run's inference pods.
    expect(rules(makeRun({ inference: { port: 9000 } }))).to.deep.equal([
      { port: "7070", from: undefined },
      { port: "9090", from: undefined },
      { port: "7071+7073", from: ["inference"] }, // gRPC and the bulk channel alike
      { port: "any", from: ["trainer"] },
    ]);
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

  const replicaCases: [string, Record<string, unknown>, boolean, number | undefined][] = [
    ["fixed, default 1", {}, false, 1],
    ["fixed 5", { replicas: 5 }, false, 5],
    ["autoscaled: left to the autoscaler", { autoscaling: { enabled: true } }, false, undefined],
    ["stopped: zero", { replicas: 5 }, true, 0],
    ["stopped and autoscaled: zero", { autoscaling: { enabled: true } }, true, 0],
  ];
  for (const [what, workers, stopped, want] of replicaCases)
    it(`owned pool replicas: ${what}`, () => {
      const r = makeRun({ workers });
      expect(inlineReplicas(r, stopped)).to.equal(want);
      const p = buildOwnedPool(r, inlineReplicas(r, stopped));
      expect(p.metadata!.name).to.equal("qa");
      expect(p.spec.hubRef.name).to.equal("qa");
      expect(p.spec.replicas).to.equal(want);
    });
});

describe("operator builders: AgentWorkerPool children", () => {
  it("bwrap mode: non-root, no capabilities, read-only root, seccomp/AppArmor Unconfined for user namespaces", () => {
    const d = buildWorkerDeployment(makePool(), undefined, 3);
    const pod = d.spec!.template.spec!;
    expect(d.spec!.replicas).to.equal(3);
    expect(pod.automountServiceAccountToken).to.equal(false);
    expect(pod.securityContext).to.deep.include({ runAsNonRoot: true, runAsUser: 65532 });
    expect(pod.containers[0]!.securityContext).to.deep.include({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "Unconfined" },
      // bwrap mounts a fresh /proc: the runtime's masked one forbids it; only in a user namespace.
      procMount: "Unmasked",
    });
    expect(pod.hostUsers).to.equal(false);
    expect(pod.runtimeClassName).to.equal(undefined);
  });

  it("runtimeClass mode: RuntimeDefault profiles, the host's users, a masked /proc and the RuntimeClass", () => {
    const p = makePool({ sandbox: { mode: "runtimeClass", runtimeClassName: "gvisor" } });
    expect(sandboxSecurity(p).container.seccompProfile).to.deep.equal({ type: "RuntimeDefault" });
    const pod = buildWorkerDeployment(p, undefined, 1).spec!.template.spec!;
    expect(pod.runtimeClassName).to.equal("gvisor");
    expect(pod.hostUsers).to.equal(undefined);
    expect(pod.containers[0]!.securityContext!.procMount).to.equal(undefined);
  });

  // Strict mode needs a writable pids cgroup, which these non-root pods without capabilities lack:
  // a worker told `strict` exits at start. Weak mode (bwrap + rlimits) relies on the memory limit.
  const modeCases: [string, Record<string, unknown>, Record<string, string>][] = [
    ["bwrap, defaults", {}, { memory: `${8 * (1024 + 64) + 512}Mi`, cpu: "8" }],
    ["runtimeClass", { sandbox: { mode: "runtimeClass", runtimeClassName: "gvisor" } }, { cpu: "8" }],
    [
      "small kernels",
      { episodesPerWorker: 2, sandbox: { memoryMiB: 256 } },
      { memory: `${2 * 320 + 512}Mi`, cpu: "2" },
    ],
    ["user limit kept", { resources: { limits: { memory: "3Gi", cpu: "2" } } }, { memory: "3Gi", cpu: "2" }],
    [
      "request becomes the limit",
      { resources: { requests: { memory: "5Gi" } } },
      { memory: "5Gi", cpu: "8" },
    ],
    ["CPU request becomes the CPU limit", { resources: { requests: { cpu: "3" } } }, { cpu: "3" }],
  ];
  for (const [what, spec, limits] of modeCases)
    it(`sandbox mode weak and memory and CPU limits on the worker: ${what}`, () => {
      const c = buildWorkerDeployment(makePool(spec), undefined, 1).spec!.template.spec!.containers[0]!;
      expect(c.env!.find((e) => e.name === "L0_WORKER_SANDBOX_MODE")!.value).to.equal("weak");
      expect(c.resources!.limits!.memory, "memory limit always set").to.be.a("string");
      expect(c.resources!.limits!.cpu, "CPU limit always set").to.be.a("string");
      expect(c.resources!.limits).to.include(limits);
      if (!spec.resources)
        expect(parseInt(c.resources!.requests!.memory!)).to.be.at.most(
          parseInt(c.resources!.limits!.memory!),
        );
    });

  it("workers reach the run's hub and engine by Service DNS; the search key is a mounted file", () => {
    const p = makePool({
      tools: { search: { backend: "http", url: "https://s", secretRef: { name: "k" } } },
    });
    const env = buildWorkerDeployment(p, makeRun({ inference: { port: 9000 } }), 1).spec!.template.spec!
      .containers[0]!.env!;
    const get = (n: string) => env.find((e) => e.name === n);
    expect(get("L0_WORKER_HUB")!.value).to.equal("qa-hub.ns.svc:7070");
    expect(get("L0_WORKER_ENGINE_URL")!.value).to.equal("http://qa-inference.ns.svc:9000");
    expect(get("L0_WORKER_SEARCH_KEY_FILE")!.value).to.equal("/var/run/l0-search/apiKey");
    const pod = buildWorkerDeployment(p, undefined, 1).spec!.template.spec!;
    expect(pod.volumes!.find((v) => v.name === "search-key")!.secret!.secretName).to.equal("k");
    expect(
      env.every((e) => !e.valueFrom?.secretKeyRef),
      "no secret in the environment",
    ).to.equal(true);
  });

  it("NetworkPolicy: ingress only to metrics; egress to hub, engine, DNS and declared tool CIDRs", () => {
    const np = buildNetworkPolicy(
      makePool({ tools: { egress: [{ cidr: "10.1.0.0/16", ports: [443] }] } }),
      makeRun({ inference: {} }),
    );
    expect(np.spec!.policyTypes).to.deep.equal(["Ingress", "Egress"]);
    expect(np.spec!.ingress).to.deep.equal([{ ports: [{ protocol: "TCP", port: 9090 }] }]);
    const to = np.spec!.egress!.map((e) => JSON.stringify(e.to));
    expect(to).to.have.length(4);
    expect(to[0]).to.include('"app.kubernetes.io/component":"trainer"');
    expect(to[1]).to.include("kube-dns");
    expect(to[2]).to.include('"app.kubernetes.io/component":"inference"');
    expect(np.spec!.egress![3]).to.deep.equal({
      to: [{ ipBlock: { cidr: "10.1.0.0/16" } }],
      ports: [{ protocol: "TCP", port: 443 }],
    });
  });

  it("ServiceAccount mounts no token; PDB selects the workers", () => {
    expect(buildServiceAccount(makePool()).automountServiceAccountToken).to.equal(false);
    expect(buildPdb(makePool()).spec!.selector!.matchLabels).to.deep.equal({
      "l0.dev/pool": "p",
      "app.kubernetes.io/component": "workers",
    });
  });
});

describe("operator policies", () => {
  const invalid: [string, Record<string, unknown>, RegExp][] = [
    [
      "both workers and workerPoolRef",
      { workerPoolRef: { name: "x" } },
      /exactly one of spec.workers and spec.workerPoolRef/,
    ],
    [
      "min > max replicas",
      { workers: { autoscaling: { minReplicas: 5, maxReplicas: 2 } } },
      /spec\.workers\.autoscaling\.minReplicas: must be <= maxReplicas/,
    ],
    [
      "runtimeClass without a name",
      { workers: { sandbox: { mode: "runtimeClass" } } },
      /spec\.workers\.sandbox\.runtimeClassName: is required when mode is runtimeClass/,
    ],
    [
      "tensor parallel over GPUs",
      { inference: { gpus: 2, tensorParallel: 4 } },
      /spec\.inference\.tensorParallel: must be <= gpus/,
    ],
    [
      "SGLang without its image",
      { inference: { engine: "sglang" } },
      /spec\.inference\.image: is required when engine is sglang/,
    ],
    ["a bad enum", { algorithm: { name: "ppo" } }, /spec\.algorithm\.name: must be one of/],
  ];
  for (const [what, spec, msg] of invalid)
    it(`rejects ${what}, naming the field`, () => {
      const obj = {
        apiVersion: "l0.dev/v1alpha1",
        kind: "TrainingRun",
        metadata: { name: "r" },
        spec: { model: { name: "tiny" }, dataset: { path: "/d" }, workers: {}, ...spec },
      };
      const v = validateRun(obj as never);
      expect("invalid" in v && v.invalid.message).to.match(msg);
    });

  const invalidPools: [string, object, RegExp][] = [
    [
      "min > max replicas",
      { autoscaling: { minReplicas: 9, maxReplicas: 3 } },
      /spec\.autoscaling\.minReplicas: must be <= maxReplicas/,
    ],
    [
      "runtimeClass without a name",
      { sandbox: { mode: "runtimeClass" } },
      /spec\.sandbox\.runtimeClassName: is required/,
    ],
    [
      "a bad policy type",
      {
        autoscaling: {
          behavior: { scaleUp: { policies: [{ type: "Nodes", value: 1, periodSeconds: 15 }] } },
        },
      },
      /spec\.autoscaling\.behavior\.scaleUp\.policies\[0\]\.type: must be one of "Pods", "Percent"/,
    ],
  ];
  for (const [what, spec, msg] of invalidPools)
    it(`rejects a pool with ${what}, naming the field`, () => {
      const v = validatePool({
        kind: "AgentWorkerPool",
        metadata: { name: "p" },
        spec: { hubRef: { name: "qa" }, ...spec },
      } as never);
      expect("invalid" in v && v.invalid).to.include({ reason: "InvalidSpec" });
      expect("invalid" in v && v.invalid.message).to.match(msg);
    });

  const job = (conds: { type: string; status: string; message?: string }[]) =>
    viewJob({ metadata: { name: "j" }, status: { conditions: conds } }, 1);
  const actions: [string, ReturnType<typeof viewJob> | undefined, number, number, string][] = [
    ["no job: create", undefined, 0, 3, "create"],
    ["running: wait", job([]), 0, 3, "wait"],
    ["complete", job([{ type: "Complete", status: "True" }]), 0, 3, "complete"],
    [
      "failed with budget: restart",
      job([{ type: "Failed", status: "True", message: "pod 1 exited 137" }]),
      1,
      3,
      "restart",
    ],
    ["failed, budget spent: fail", job([{ type: "Failed", status: "True" }]), 3, 3, "fail"],
    ["failed, maxRestarts 0: fail", job([{ type: "Failed", status: "True" }]), 0, 0, "fail"],
    ["a False Failed condition is no failure", job([{ type: "Failed", status: "False" }]), 0, 3, "wait"],
  ];
  it("trainer action: a configuration failure fails at once, with its own reason, budget or not", () => {
    const failed = { reason: "InvalidField", message: "spec.dataset.path: cannot read /d", config: true };
    const a = trainerAction({ ...job([{ type: "Failed", status: "True" }])!, failed }, 0, 3);
    expect(a).to.deep.equal({
      kind: "fail",
      why: {
        reason: "InvalidField",
        message: "not restarted (configuration): spec.dataset.path: cannot read /d",
      },
    });
  });

  for (const [what, view, restarts, max, want] of actions)
    it(`trainer action: ${what}`, () => {
      const a = trainerAction(view, restarts, max);
      expect(a.kind).to.equal(want);
      if (a.kind === "restart") expect(a.nextAttempt).to.equal(2);
      if (a.kind === "fail") expect(a.why.reason).to.equal("BackoffLimitExceeded");
    });

  const base: RunObservation = { generation: 2, suspended: false, restarts: 0, maxSteps: 10 };
  const jv = { name: "j", attempt: 0, suspended: false, active: 1, ready: 1, complete: false };
  const phases: [string, Partial<RunObservation>, string, Record<string, string>][] = [
    ["nothing yet", {}, "Pending", { Ready: "False", Progressing: "True" }],
    [
      "trainer starting",
      { job: { ...jv, ready: 0 } },
      "Initializing",
      { Ready: "False", Progressing: "True", Degraded: "False" },
    ],
    [
      "hub answers",
      { job: jv, hub: { stats: { step: 1, maxSteps: 10, policyVersion: 1, rewardMean: 0.5, backlog: 3 } } },
      "Running",
      { Ready: "True", Progressing: "True" },
    ],
    [
      "hub unreachable",
      { job: jv, hub: { error: "refused" } },
      "Initializing",
      { Ready: "False", Degraded: "True" },
    ],
    ["suspended", { suspended: true, job: jv }, "Suspended", { Progressing: "False", Ready: "False" }],
    [
      "completed",
      { completed: true, job: jv },
      "Succeeded",
      { Complete: "True", Progressing: "False", Failed: "False" },
    ],
    [
      "failed",
      { failed: { reason: "BackoffLimitExceeded", message: "x" }, job: jv },
      "Failed",
      { Failed: "True", Degraded: "True", Complete: "False" },
    ],
    [
      "invalid",
      { invalid: { reason: "InvalidSpec", message: "spec.x: bad" } },
      "Failed",
      { Degraded: "True", Failed: "True" },
    ],
  ];
  for (const [what, o, phase, conds] of phases)
    it(`run phase: ${what} -> ${phase}`, () => {
      const r = phaseAndConditions({ ...base, ...o });
      expect(r.phase).to.equal(phase);
      for (const [t, s] of Object.entries(conds))
        expect(r.conditions.find((c) => c.type === t)!.status, t).to.equal(s);
    });

  it("run status keeps hub figures when the hub stops answering, and sets completionTime once", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const s1 = computeRunStatus(
      undefined,
      {
        ...base,
        job: jv,
        hub: { stats: { step: 4, maxSteps: 10, policyVersion: 4, rewardMean: 0.3, backlog: 8 } },
      },
      now,
    );
    const s2 = computeRunStatus(s1, { ...base, job: jv, hub: { error: "refused" } }, now);
    expect(s2).to.include({ step: 4, rewardMean: 0.3, observedGeneration: 2 });
    const s3 = computeRunStatus(s2, { ...base, job: jv, completed: true }, now);
    const s4 = computeRunStatus(s3, { ...base, job: jv, completed: true }, new Date("2026-01-02T00:00:00Z"));
    expect(s4.completionTime).to.equal("2026-01-01T00:00:00Z");
  });

  it("pool stop reasons and status", () => {
    const r = makeRun();
    expect(stopReason(makePool(), undefined)!.reason).to.equal("RunNotFound");
    expect(stopReason(makePool(), { ...r, spec: { ...r.spec, suspend: true } })!.reason).to.equal(
      "RunSuspended",
    );
    expect(stopReason(makePool(), { ...r, status: { phase: "Succeeded" } })!.reason).to.equal("RunFinished");
    expect(stopReason(makePool(), r)).to.equal(undefined);
    const st = computePoolStatus(
      undefined,
      { generation: 1, desired: 3, replicas: 3, ready: 2, scaled: false, selector: "s" },
      new Date(),
    );
    expect(st).to.include({ desiredReplicas: 3, readyReplicas: 2, selector: "s" });
    expect(st.conditions!.find((c) => c.type === "Ready")!.status).to.equal("False");
  });

  it("pool status keeps the autoscaler's last recommendation; its time moves only with replicas or reason", () => {
    const o = (replicas: number, reason: string, message: string) => ({
      generation: 1,
      desired: replicas,
      replicas: 2,
      ready: 2,
      scaled: false,
      selector: "s",
      recommendation: { replicas, reason, message },
    });
    const t0 = new Date("2026-01-01T00:00:00Z");
    const t1 = new Date("2026-01-01T00:01:00Z");
    const s1 = computePoolStatus(undefined, o(2, "WithinTolerance", "backlog 16"), t0);
    expect(s1.lastRecommendation).to.deep.equal({
      replicas: 2,
      reason: "WithinTolerance",
      message: "backlog 16",
      time: "2026-01-01T00:00:00Z",
    });
    const s2 = computePoolStatus(s1, o(2, "WithinTolerance", "backlog 17"), t1);
    expect(s2.lastRecommendation).to.include({ message: "backlog 17", time: "2026-01-01T00:00:00Z" });
    const s3 = computePoolStatus(s2, o(4, "BacklogHigh", "backlog 40"), t1);
    expect(s3.lastRecommendation).to.include({ replicas: 4, time: "2026-01-01T00:01:00Z" });
    const { recommendation: _r, ...fixed } = o(2, "x", "y");
    expect(computePoolStatus(undefined, fixed, t0)).to.not.have.property("lastRecommendation");
  });
});

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

describe("operator: why a trainer pod failed (termination messages)", () => {
  const pod = (...containers: [string, number, string?][]) => ({
    status: {
      containerStatuses: containers.map(([name, exitCode, message]) => ({
        name,
        state: { terminated: { exitCode, ...(message === undefined ? {} : { message }) } },
      })),
    },
  });
  const cases: [
    string,
    ReturnType<typeof pod>[],
    { reason: string; message: string; config?: boolean } | undefined,
  ][] = [
    ["no pods", [], undefined],
    ["killed without a message", [pod(["trainer", 137])], undefined],
    ["a success says nothing", [pod(["trainer", 0, "done"])], undefined],
    [
      "the trainer's Reason: message",
      [pod(["trainer", 137]), pod(["trainer", 1, "EngineDegraded: e0 failed to load v4\n"])],
      { reason: "EngineDegraded", message: "trainer exited 1 (EngineDegraded): e0 failed to load v4" },
    ],
    [
      "log lines (FallbackToLogsOnError) keep a generic reason",
      [pod(["trainer", 2, '{"level":"error","message":"boom"}'])],
      {
        reason: "TrainerFailed",
        message: 'trainer exited 2 (TrainerFailed): {"level":"error","message":"boom"}',
        config: true,
      },
    ],
    [
      "exit 2 is the configuration: marked so the gang restart does not retry it",
      [pod(["trainer", 2, "InvalidField: spec.dataset.evalPath: cannot read /d/eval.jsonl"])],
      {
        reason: "InvalidField",
        message: "trainer exited 2 (InvalidField): spec.dataset.evalPath: cannot read /d/eval.jsonl",
        config: true,
      },
    ],
  ];
  for (const [name, pods, want] of cases)
    it(name, () => expect(trainerFailureFromPods(pods)).to.deep.equal(want));

  it("keeps the end of a long message", () => {
    const v = trainerFailureFromPods([pod(["trainer", 1, "Internal: " + "x".repeat(3000) + "END"])])!;
    expect(v.message.length).to.be.below(1100);
    expect(v.message.endsWith("END")).to.equal(true);
  });
});
