// The pure checks behind the stuck-run conditions, as tables: what the API server refuses in a
// child (names, label values, CIDRs), a run's preflight, a pool's start problems, and the
// recognition of orphaned children and of a scale from outside.
import { expect } from "chai";
import { type AgentWorkerPool, type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { resolvedRun } from "../fixtures/runs.js";
import { cidrError, dnsLabelError, labelValueError } from "../../operator/k8s-rules.js";
import { orphanedChildOf } from "../../operator/labels.js";
import {
  childNameCheck,
  configSizeCheck,
  rewardCheck,
  samplingCheck,
} from "../../operator/trainingrun/preflight.js";
import { scaledOutside, unschedulableTrainer, workersProblem } from "../../operator/trainingrun/stuck.js";
import { startProblem } from "../../operator/workerpool/health.js";

/** A resolved run (the CRD's defaults applied), as the checks receive it. */
const runOf = (name: string, spec: Record<string, unknown> = {}): ResolvedTrainingRun => {
  const run = resolvedRun({ model: { name: "tiny" }, dataset: { path: "/d" }, ...spec }, name, "ml");
  return { ...run, metadata: { ...run.metadata, uid: "u1" } };
};

describe("operator checks", () => {
  it("k8s rules: RFC 1123 labels, label values and v1.36 CIDRs", () => {
    expect(dnsLabelError("7b-hub")).to.equal(undefined);
    expect(dnsLabelError("qa.v2-hub")).to.match(/no dots/);
    expect(dnsLabelError("a".repeat(64))).to.equal("64 characters, at most 63");
    expect(labelValueError("qa.v2")).to.equal(undefined);
    expect(labelValueError("-x")).to.match(/starting and ending/);
    const cidrs: [string, RegExp | undefined][] = [
      ["10.0.0.0/8", undefined],
      ["203.0.113.7/32", undefined],
      ["2001:db8::/64", undefined],
      ["0.0.0.0/0", undefined],
      ["10.0.0.0/33", /prefix length/],
      ["10.0.0.1/8", /bits are set beyond/],
      ["010.0.0.0/8", /not an IP address/],
      ["10.0.0.0/08", /prefix length/],
      ["203.0.113.7", /not a CIDR/],
      ["example.com/32", /not an IP address/],
    ];
    for (const [c, want] of cidrs)
      if (want) expect(cidrError(c), c).to.match(want);
      else expect(cidrError(c), c).to.equal(undefined);
  });

  it("a run's name: the longest that fits its Jobs' hostnames, and no dots", () => {
    // `<name>-trainer-<maxRestarts>-<node>` is the last pod's hostname: 63 characters at most.
    const fits = (name: string, trainer = {}) => childNameCheck(runOf(name, { trainer }));
    expect(fits("a".repeat(51))).to.equal(undefined);
    expect(fits("a".repeat(52))?.message).to.contain("trainer pod hostname");
    expect(fits("a".repeat(50), { nodes: 12 })).to.equal(undefined);
    expect(fits("a".repeat(51), { nodes: 12 })?.message).to.contain(`"${"a".repeat(51)}-trainer-3-11"`);
    expect(fits("a".repeat(49), { maxRestarts: 10 })).to.equal(undefined);
    const dotted = fits("qa.v2");
    expect(dotted?.reason).to.equal("InvalidName");
    expect(dotted?.message).to.contain('Service "qa.v2-trainer"');
    expect(dotted?.message).to.not.contain("Job");
  });

  it("settings that can never train, and a run.json too big for a ConfigMap", () => {
    expect(samplingCheck(runOf("a", { algorithm: { groupSize: 1 } }))?.message).to.match(
      /^spec\.algorithm\.groupSize/,
    );
    expect(samplingCheck(runOf("a", { algorithm: { groupSize: 1, dynamicSampling: false } }))).to.equal(
      undefined,
    );
    expect(samplingCheck(runOf("a", { algorithm: { groupSize: 2 } }))).to.equal(undefined);
    const zero = { exactMatch: 0, f1: 0, hasAnswer: 0, format: 0, codeExecution: 0 };
    expect(rewardCheck(runOf("a", { reward: zero }))?.message).to.match(/^spec\.reward: every weight is 0/);
    expect(rewardCheck(runOf("a", { reward: { ...zero, format: 0.1 } }))).to.equal(undefined);
    const big = { tolerations: [{ key: "k".repeat(600_000) }, { key: "j".repeat(600_000) }] };
    expect(configSizeCheck(runOf("a", { trainer: big }))?.message).to.match(/^spec\.trainer\.tolerations: /);
    expect(
      configSizeCheck(runOf("a", { trainer: { nodeSelector: { a: "x".repeat(1_100_000) } } }))?.message,
    ).to.match(/^spec\.trainer\.nodeSelector\.a: /);
    expect(configSizeCheck(runOf("a"))).to.equal(undefined);
  });

  it("a pool's start problems, from its Deployment's ReplicaFailure", () => {
    const deploy = (message: string) => ({
      metadata: { name: "p-workers", namespace: "ml" },
      status: { conditions: [{ type: "ReplicaFailure", status: "True", reason: "FailedCreate", message }] },
    });
    expect(startProblem(undefined)).to.equal(undefined);
    expect(startProblem({ status: { conditions: [] } })).to.equal(undefined);
    const cases: [string, string, string][] = [
      [
        'pods "p-workers-abc-" is forbidden: pod rejected: RuntimeClass "gvisor" not found',
        "RuntimeClassNotFound",
        "spec.sandbox.runtimeClassName",
      ],
      [
        'pods "p-workers-abc-" is forbidden: violates PodSecurity "baseline:latest": seccompProfile (pod must not set ...)',
        "PodSecurityForbidden",
        'namespace ml enforces Pod Security "baseline:latest": seccompProfile',
      ],
      ['pods "p-workers-abc-" is forbidden: exceeded quota: q', "PodCreateFailed", "exceeded quota"],
    ];
    for (const [msg, reason, names] of cases) {
      const v = startProblem(deploy(msg));
      expect(v?.reason, msg).to.equal(reason);
      expect(v?.message, msg).to.contain("Deployment p-workers cannot create worker pods").and.contain(names);
    }
  });

  it("stuck runs: unschedulable trainer pods, missing or degraded pools", () => {
    const pending = (status: string, reason: string) => ({
      metadata: { name: "a-trainer-0-0-xyz" },
      status: {
        phase: "Pending",
        conditions: [{ type: "PodScheduled", status, reason, message: "0/3 nodes are available" }],
      },
    });
    const r = runOf("a", { trainer: { gpusPerNode: 16 } });
    expect(unschedulableTrainer(r, [pending("False", "Unschedulable")])?.message).to.equal(
      "trainer pod a-trainer-0-0-xyz cannot be scheduled: 0/3 nodes are available (spec.trainer.gpusPerNode 16, spec.trainer.resources, spec.trainer.nodeSelector)",
    );
    expect(unschedulableTrainer(r, [pending("True", "")])).to.equal(undefined);
    const ref = runOf("a", { workerPoolRef: { name: "p" } });
    expect(workersProblem(ref, "p", undefined)?.reason).to.equal("WorkerPoolNotFound");
    expect(
      workersProblem(runOf("a", { workers: {} }), "a", undefined),
      "inline pool not created yet",
    ).to.equal(undefined);
    const pool = (status: string) =>
      ({
        spec: { hubRef: { name: "a" } },
        status: { conditions: [{ type: "Degraded", status, reason: "R", message: "m" }] },
      }) as AgentWorkerPool;
    expect(workersProblem(ref, "p", pool("True"))?.message).to.equal("AgentWorkerPool p: R: m");
    expect(workersProblem(ref, "p", pool("False"))).to.equal(undefined);
  });

  it("who scaled a run-owned pool, from its managedFields", () => {
    const pool = (replicas: number, manager: string) =>
      ({
        metadata: { name: "a", managedFields: [{ manager, fieldsV1: { "f:spec": { "f:replicas": {} } } }] },
        spec: { hubRef: { name: "a" }, replicas },
      }) as unknown as AgentWorkerPool;
    expect(scaledOutside(pool(5, "kubectl"), 2)?.message).to.contain("scaled to 5 by kubectl");
    expect(scaledOutside(pool(5, "l0-operator"), 2), "the run's own change").to.equal(undefined);
    expect(scaledOutside(pool(2, "kubectl"), 2)).to.equal(undefined);
    expect(scaledOutside(pool(5, "kubectl"), undefined), "autoscaled: not ours").to.equal(undefined);
  });

  it("orphaned children: our labels, this run, and no controller", () => {
    const run = { metadata: { name: "a", uid: "u1" } };
    const labels = {
      "l0.dev/run": "a",
      "app.kubernetes.io/instance": "a",
      "app.kubernetes.io/managed-by": "l0-operator",
    };
    const obj = (l: Record<string, string>, controller?: boolean) => ({
      metadata: {
        labels: l,
        ...(controller !== undefined
          ? { ownerReferences: [{ apiVersion: "v1", kind: "X", name: "x", uid: "x", controller }] }
          : {}),
      },
    });
    expect(orphanedChildOf(obj(labels), run)).to.equal(true);
    expect(orphanedChildOf(obj(labels, false), run), "a non-controller reference only").to.equal(true);
    expect(orphanedChildOf(obj(labels, true), run), "someone controls it (the pool's Deployment)").to.equal(
      false,
    );
    expect(orphanedChildOf(obj({ ...labels, "app.kubernetes.io/managed-by": "helm" }), run)).to.equal(false);
    expect(orphanedChildOf(obj({ ...labels, "l0.dev/run": "b" }), run)).to.equal(false);
  });
});
