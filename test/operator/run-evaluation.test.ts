// The in-run evaluation reaches the TrainingRun's status: the hub's Stats carry the last
// evaluation (step, exact-match accuracy and, with a judge, the judge's accuracy, accuracy given
// attempted and F-score) over the real gRPC wire, the operator copies it to status.evaluation,
// and the API server's schema keeps it. No judge: no judge figures (absent, not zeros); no
// evaluation yet: no status.evaluation.
import { expect } from "chai";
import { type l0 } from "../../lib/proto.js";
import { Judge } from "../../images/trainer/hub/judge.js";
import { toHubView } from "../../operator/trainingrun/hub.js";
import { computeRunStatus, type HubView, type RunObservation } from "../../operator/trainingrun/status.js";
import { scriptedJudge } from "../eval/fixtures/judge.js";
import { END, dataset, rightAnswer, serve, settings, traj, type Served } from "../hub/helpers.js";
import { type Env, TR, eventually, fakeHub, getRun, run, startEnv } from "./harness.js";

const observe = (stats: HubView): RunObservation => ({
  generation: 1,
  suspended: false,
  restarts: 0,
  job: { name: "qa-trainer-0", attempt: 0, suspended: false, active: 1, ready: 1, complete: false },
  hub: { stats },
  maxSteps: 10,
});
const NOW = new Date("2026-01-01T00:00:00Z");

/** Four held-out questions: right, right, wrong, no answer (the judge grades the first three). */
async function answerFour(s: Served): Promise<void> {
  const tasks = (await s.rpc.lease("w", 10)).tasks;
  expect(tasks).to.have.length(4);
  const plan: ((t: l0.v1.ITask) => l0.v1.ITrajectory)[] = [
    (t) => traj(t, { answer: rightAnswer(t) }),
    (t) => traj(t, { answer: rightAnswer(t) }),
    (t) => traj(t, { answer: "wrong" }),
    (t) => traj(t, { answer: null, end: END.EPISODE_END_MAX_TURNS }),
  ];
  for (const [i, t] of tasks.entries()) await s.rpc.submit(plan[i]!(t));
}

describe("operator: the in-run evaluation in the run's status", function () {
  this.timeout(20_000);
  let s: Served | undefined;
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await s?.close();
    s = undefined;
    for (const c of closers.splice(0)) await c();
  });

  /** A hub that has served one training step, so the evaluation runs at step 1. */
  async function hubAfterOneStep(judge: boolean): Promise<Served> {
    let evalJudge = null;
    if (judge) {
      const j = await scriptedJudge();
      closers.push(j.close);
      const grader = new Judge({
        baseUrl: j.url,
        model: "grader",
        attempts: 1,
        timeoutMs: 5000,
        backoffMs: 1,
      });
      evalJudge = { judge: grader, maxConcurrent: 2 };
    }
    const served = await serve({
      settings: settings({ algorithm: { groupSize: 1, batchSize: 1 } }),
      eval: dataset(4),
      maxAttempts: 1,
      judge: evalJudge,
    });
    const { step } = await served.hub.beginStep(1);
    for (const t of (await served.rpc.lease("w", 1)).tasks) await served.rpc.submit(traj(t, { version: 1 }));
    await served.hub.batch(step);
    return served;
  }

  it("before any evaluation the hub reports none and the status has no evaluation", async () => {
    s = await hubAfterOneStep(true);
    const view = toHubView(await s.rpc.stats());
    expect(view).to.not.have.property("evaluation");
    expect(computeRunStatus(undefined, observe(view), NOW)).to.not.have.property("evaluation");
  });

  it("a judged evaluation: its step, accuracy and the judge's three figures", async () => {
    s = await hubAfterOneStep(true);
    const done = s.hub.evaluate(1);
    await answerFour(s);
    const r = await done;
    expect(r.judge).to.deep.include({ correct: 2, incorrect: 1, notAttempted: 1 });
    const status = computeRunStatus(undefined, observe(toHubView(await s.rpc.stats())), NOW);
    expect(status.evaluation).to.deep.equal({
      step: 1,
      accuracy: 0.5,
      judge: { accuracy: 2 / 4, accuracyGivenAttempted: 2 / 3, fScore: r.judge!.fScore },
    });
    expect(r.judge!.fScore).to.be.greaterThan(0);
  });

  it("without a judge: accuracy only, no judge figures (absent, not zeros)", async () => {
    s = await hubAfterOneStep(false);
    const done = s.hub.evaluate(1);
    await answerFour(s);
    await done;
    const status = computeRunStatus(undefined, observe(toHubView(await s.rpc.stats())), NOW);
    expect(status.evaluation).to.deep.equal({ step: 1, accuracy: 0.5 });
  });

  it("keeps the last evaluation while the hub is unreachable, and drops judge figures the hub no longer has", () => {
    const judged = {
      step: 2,
      accuracy: 0.4,
      judge: { accuracy: 0.5, accuracyGivenAttempted: 0.6, fScore: 0.55 },
    };
    const stats = { step: 3, maxSteps: 10, policyVersion: 3, rewardMean: 0.1, backlog: 0 };
    const s1 = computeRunStatus(undefined, observe({ ...stats, evaluation: judged }), NOW);
    const s2 = computeRunStatus(s1, { ...observe(stats), hub: { error: "refused" } }, NOW);
    expect(s2.evaluation).to.deep.equal(judged);
    const s3 = computeRunStatus(s2, observe({ ...stats, evaluation: { step: 4, accuracy: 0.7 } }), NOW);
    expect(s3.evaluation).to.deep.equal({ step: 4, accuracy: 0.7 });
  });

  describe("against the in-process API server", () => {
    let env: Env;
    beforeEach(async () => {
      env = await startEnv({ kubelet: "ready", jobPods: "manual" });
    });
    afterEach(() => env.stop());

    it("the CRD's status schema keeps status.evaluation as the operator writes it", async () => {
      const hub = fakeHub();
      await env.startOperator({ hub, statsIntervalMs: 50 });
      await env.custom.createNamespacedCustomObject({
        ...TR,
        body: run("a", { trainer: { gpusPerNode: 0 } }),
      });
      const evaluation = {
        step: 3,
        accuracy: 0.25,
        judge: { accuracy: 0.3, accuracyGivenAttempted: 0.6, fScore: 0.4 },
      };
      hub.set({ step: 3, evaluation });
      await eventually(() => getRun(env, "a")?.status?.evaluation?.step === 3, "status.evaluation");
      expect(getRun(env, "a")!.status.evaluation).to.deep.equal(evaluation);
    });
  });
});
