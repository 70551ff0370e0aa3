// Kueue's job-integration contract against the in-process API server: a queued run's trainer Job
// is created suspended with the queue label, stays suspended while Kueue holds it (the operator
// never lifts it, whatever else changes), runs once "Kueue" admits it, and the operator does not
// undo a later preemption. Kueue itself is played by the test (it only flips spec.suspend).
import { expect } from "chai";
import { mergePatch } from "../kube/testkit.js";
import { trainerSuspend } from "../../operator/trainingrun/policy.js";
import { type Env, TR, eventually, getRun, run, startEnv } from "./harness.js";

const J = (env: Env, name: string) => env.kube.get("batch/v1", "Job", "default", name);
const D = (env: Env, name: string) => env.kube.get("apps/v1", "Deployment", "default", name);
const QUEUE = "kueue.x-k8s.io/queue-name";

describe("operator: Kueue", function () {
  this.timeout(20_000);
  let env: Env;
  beforeEach(async () => {
    env = await startEnv({ kubelet: "ready", jobPods: "manual" });
  });
  afterEach(() => env.stop());

  const table: [string, { suspend: boolean; queueName?: string }, boolean, boolean | undefined][] = [
    ["not queued, running", { suspend: false }, false, false],
    ["not queued, suspended", { suspend: true }, false, true],
    ["queued, new Job", { suspend: false, queueName: "q" }, true, true],
    ["queued, existing Job: Kueue's to lift", { suspend: false, queueName: "q" }, false, undefined],
    ["queued, suspended by the user", { suspend: true, queueName: "q" }, false, true],
  ];
  for (const [what, spec, creating, want] of table)
    it(`trainerSuspend: ${what}`, () => expect(trainerSuspend({ spec }, creating)).to.equal(want));

  it("a queued run's Job stays suspended while Kueue holds it, runs when admitted, stays preempted", async () => {
    await env.startOperator({ resyncMs: 100 });
    const body = run("a", { queueName: "team-gpu", inference: {}, model: { name: "/models/m" } });
    await env.custom.createNamespacedCustomObject({ ...TR, body });
    const job = await eventually(() => J(env, "a-trainer-0"), "trainer job");
    expect(job.spec.suspend, "created suspended").to.equal(true);
    expect(job.metadata.labels[QUEUE]).to.equal("team-gpu");
    expect(job.spec.template.metadata.labels[QUEUE], "pods are the Job's, not Workloads").to.equal(undefined);
    await eventually(() => D(env, "a-inference")?.metadata.labels[QUEUE] === "team-gpu", "inference label");
    await eventually(() => D(env, "a-workers")?.metadata.labels[QUEUE] === "team-gpu", "workers label");
    // A spec change reconciles the run again (and resyncs run every 100 ms): the Job stays held.
    await env.custom.patchNamespacedCustomObject(
      { ...TR, name: "a", body: { spec: { trainer: { ttlSecondsAfterFinished: 60 } } } },
      mergePatch,
    );
    await eventually(() => J(env, "a-trainer-0")?.spec.ttlSecondsAfterFinished === 60, "ttl kept in step");
    expect(J(env, "a-trainer-0")!.spec.suspend, "held by Kueue").to.equal(true);
    expect(env.kube.sim.activeJobPods("a-trainer-0")).to.have.length(0);
    // Kueue admits: it lifts the suspension; the operator keeps it lifted and the pod starts.
    await env.batch.patchNamespacedJob(
      { name: "a-trainer-0", namespace: "default", body: { spec: { suspend: false } } },
      mergePatch,
    );
    await eventually(() => env.kube.sim.activeJobPods("a-trainer-0").length === 1, "trainer pod");
    // Kueue preempts: it suspends again; the operator does not resume it.
    await env.batch.patchNamespacedJob(
      { name: "a-trainer-0", namespace: "default", body: { spec: { suspend: true } } },
      mergePatch,
    );
    await env.custom.patchNamespacedCustomObject(
      { ...TR, name: "a", body: { spec: { trainer: { ttlSecondsAfterFinished: 61 } } } },
      mergePatch,
    );
    await eventually(() => J(env, "a-trainer-0")?.spec.ttlSecondsAfterFinished === 61, "reconciled again");
    expect(J(env, "a-trainer-0")!.spec.suspend, "preemption kept").to.equal(true);
    expect(getRun(env, "a")?.status?.phase).to.not.equal("Failed");
  });
});
