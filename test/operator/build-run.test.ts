// Table tests of the TrainingRun's own children (no server): the token Secret, run.json, the
// trainer Job and Services, the trainer NetworkPolicy and the inline worker pool.
import { expect } from "chai";
import { type ResolvedTrainingRun } from "../../gen/crds/index.js";
import {
  buildConfigMap,
  buildHubService,
  buildTokenSecret,
  buildTrainerJob,
  buildTrainerNetworkPolicy,
  buildTrainerService,
} from "../../operator/trainingrun/build.js";
import { buildOwnedPool, inlineReplicas } from "../../operator/trainingrun/build-inference.js";
import { makeRun } from "./objects.js";

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
