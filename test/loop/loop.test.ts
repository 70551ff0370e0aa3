// runLoop against a real Hub, with scripted workers answering through the hub's own lease/submit
// and a stand-in learner that records what it was asked to train (the real learner runs in
// local.test.ts). Checks the order of evaluations, steps, versions and checkpoints, and that an
// abort stops between steps with the trained step still consistent.
import { expect } from "chai";
import { createRegistry } from "../../lib/metrics.js";
import { type l0 } from "../../lib/proto.js";
import { Hub } from "../../images/trainer/hub/hub.js";
import { TrainerMetrics } from "../../images/trainer/trainer/metrics.js";
import { runLoop } from "../../images/trainer/trainer/loop.js";
import { type HistoryRecord } from "../../images/trainer/trainer/record.js";
import { silentLogger } from "../../lib/log.js";
import { dataset, rightAnswer, settings, traj } from "../hub/helpers.js";

class StandInLearner {
  version: number;
  readonly steps: { step: number; samples: number }[] = [];
  constructor(version: number) {
    this.version = version;
  }
  train(req: l0.v1.ITrainRequest): Promise<l0.v1.TrainResponse> {
    this.steps.push({ step: Number(req.step), samples: req.samples!.length });
    this.version++;
    return Promise.resolve({
      loss: 0.5,
      kl: 0.01,
      entropy: 1,
      gradNorm: 2,
      logprobGap: 0.02,
      policyVersion: this.version,
      seconds: 0.1,
    } as l0.v1.TrainResponse);
  }
}

/** Answers every leased task: right on even groups' first episode, so each group has signal. */
function scriptedWorkers(hub: Hub, stop: AbortSignal): Promise<void> {
  return (async () => {
    while (!stop.aborted) {
      for (const t of hub.lease("w", 16)) {
        const right = Number(/\.(\d+)$/.exec(t.taskId!)![1]) === 0 || t.eval;
        hub.submit(traj(t, { answer: right ? rightAnswer(t) : "wrong", turns: 1 }));
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
}

function setup(maxSteps: number) {
  const registry = createRegistry();
  const hub = new Hub({
    settings: settings({
      algorithm: { name: "grpo", groupSize: 2, batchSize: 2, maxSteps },
      dataset: { evalPath: "eval.jsonl", evalEvery: 2, evalSize: 3 },
    }),
    train: dataset(20),
    eval: dataset(3),
    registry,
  });
  return { hub, registry, metrics: new TrainerMetrics(registry) };
}

describe("training loop", () => {
  it("evaluates, trains every step with the new version, checkpoints and evaluates on schedule", async () => {
    const { hub, metrics, registry } = setup(5);
    const learner = new StandInLearner(7);
    const stop = new AbortController();
    const workers = scriptedWorkers(hub, stop.signal);
    const history: HistoryRecord[] = [];
    const saved: number[] = [];
    const final = await runLoop({
      hub,
      learner,
      metrics,
      logger: silentLogger(),
      signal: new AbortController().signal,
      version: 7,
      hasEval: true,
      everySteps: 2,
      checkpoint: (s) => Promise.resolve(void saved.push(s)),
      history: (r) => history.push(r),
    });
    stop.abort();
    await workers;
    expect(final).to.equal(12);
    expect(learner.steps.map((s) => s.step)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(learner.steps.every((s) => s.samples === 4)).to.equal(true); // 2 groups x 2 one-turn episodes
    expect(saved).to.deep.equal([2, 4, 5]); // every 2 steps, and the last
    expect(history.map((r) => `${r.kind}${r.step}@${r.policyVersion}`)).to.deep.equal([
      "eval0@7",
      "step1@8",
      "step2@9",
      "eval2@9",
      "step3@10",
      "step4@11",
      "eval4@11",
      "step5@12",
      "eval5@12",
    ]);
    expect(history.find((r) => r.kind === "eval")!.accuracy).to.equal(1);
    expect(hub.phase).to.equal(4); // DONE
    const text = await registry.metrics();
    expect(text).to.match(/l0_learner_loss(\{[^}]*\})? 0\.5/);
    expect(text).to.match(/l0_eval_accuracy(\{[^}]*\})? 1/);
  });

  it("stops between steps when aborted, after the step in flight is trained", async () => {
    const { hub, metrics } = setup(50);
    const learner = new StandInLearner(0);
    const stop = new AbortController();
    const workers = scriptedWorkers(hub, stop.signal);
    const abort = new AbortController();
    const history: HistoryRecord[] = [];
    const done = runLoop({
      hub,
      learner,
      metrics,
      logger: silentLogger(),
      signal: abort.signal,
      version: 0,
      hasEval: false,
      everySteps: 0,
      history: (r) => {
        history.push(r);
        if (r.kind === "step" && r.step === 3) abort.abort();
      },
    });
    await done.catch(() => undefined);
    stop.abort();
    await workers;
    expect(hub.step).to.equal(3);
    expect(learner.steps.map((s) => s.step)).to.deep.equal([1, 2, 3]);
    expect(hub.phase).not.to.equal(4);
  });
});
