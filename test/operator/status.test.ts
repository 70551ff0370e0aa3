// Table tests of the status functions (no server): a run's phase and conditions, the figures a run
// keeps, and a pool's stop reasons and status.
import { expect } from "chai";
import {
  computeRunStatus,
  phaseAndConditions,
  type RunObservation,
} from "../../operator/trainingrun/status.js";
import { computePoolStatus, stopReason } from "../../operator/workerpool/status.js";
import { makePool, makeRun } from "./objects.js";

describe("operator policies", () => {
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
