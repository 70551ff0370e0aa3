// runLoop against a real Hub, with scripted workers answering through the hub's own lease/submit
// and a stand-in learner that records what it was asked to train (the real learner runs in
// local.test.ts). Checks the order of evaluations, steps, versions and checkpoints, that an
// abort stops between steps with the trained step still consistent, and the TensorBoard curves.
import { expect } from "chai";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { createRegistry } from "../../lib/metrics.js";
import { type l0 } from "../../lib/proto.js";
import { Hub } from "../../images/trainer/hub/hub.js";
import { summarize } from "../../images/trainer/hub/scores.js";
import { TrainerMetrics } from "../../images/trainer/trainer/metrics.js";
import { runLoop } from "../../images/trainer/trainer/loop.js";
import { type HistoryRecord } from "../../images/trainer/trainer/record.js";
import { SCALARS } from "../../images/trainer/trainer/record.js";
import { TensorBoardLog, tensorboardDir } from "../../images/trainer/trainer/tensorboard.js";
import { METRICS } from "../../monitoring/catalog.js";
import { createLogger, silentLogger } from "../../lib/log.js";
import { readEventFile, tensorboardView } from "../foundation/tfevents-reader.js";
import { resolvedRun } from "../fixtures/runs.js";
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
    expect(text).to.match(/l0_eval_f1(\{[^}]*\})? 1/);
    expect(text).to.match(/^l0_eval_reward(\{[^}]*\})? [1-9]/m);
    expect(history.find((r) => r.kind === "eval")).to.deep.include({ em: 1, f1: 1, judge: null });
    // No judge configured: no judge series.
    expect(text).not.to.match(/^l0_eval_judge_answers\{/m);
  });

  it("exports a judged evaluation's grades and ratios as gauges", async () => {
    const registry = createRegistry({ defaultMetrics: false });
    new TrainerMetrics(registry).observe({
      kind: "eval",
      step: 4,
      unixMs: 0,
      ...summarize([], true),
      policyVersion: 3,
      accuracy: 0.5,
      dropped: 0,
      f1: 0.6,
      judge: {
        correct: 4,
        incorrect: 2,
        notAttempted: 1,
        failed: 3,
        accuracy: 4 / 7,
        accuracyGivenAttempted: 4 / 6,
        fScore: 0.615,
      },
    });
    const text = await registry.metrics();
    for (const [grade, n] of [
      ["correct", 4],
      ["incorrect", 2],
      ["not_attempted", 1],
      ["judge_failed", 3],
    ])
      expect(text).to.match(new RegExp(`^l0_eval_judge_answers\\{[^}]*grade="${grade}"[^}]*\\} ${n}$`, "m"));
    expect(text).to.match(/^l0_eval_judge_accuracy_given_attempted(\{[^}]*\})? 0\.666/m);
    expect(text).to.match(/^l0_eval_judge_f_score(\{[^}]*\})? 0\.615$/m);
    expect(text).to.match(/^l0_eval_f1(\{[^}]*\})? 0\.6$/m);
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

describe("training loop: TensorBoard curves (spec.observability.tensorboard)", () => {
  const tmp = () => mkdtempSync(join(tmpdir(), "l0-loop-tb-"));
  const enabled = (on: boolean) => resolvedRun({ observability: { tensorboard: { enabled: on } } });

  /** Runs 5 steps (evaluations at 0, 2, 4, 5) recording into `tb` when given. */
  async function run(tb: TensorBoardLog | null) {
    const { hub, metrics } = setup(5);
    const stop = new AbortController();
    const workers = scriptedWorkers(hub, stop.signal);
    const learner = new StandInLearner(0);
    await runLoop({
      hub,
      learner,
      metrics,
      logger: silentLogger(),
      signal: new AbortController().signal,
      version: 0,
      hasEval: true,
      everySteps: 0,
      history: (r) => tb?.record(r),
    });
    stop.abort();
    await workers;
    return learner;
  }

  it("places the event files under the checkpoint directory only when enabled", () => {
    expect(tensorboardDir(enabled(true), "/ck")).to.equal("/ck/tensorboard");
    expect(tensorboardDir(enabled(false), "/ck")).to.equal(null);
    expect(tensorboardDir(resolvedRun(), "/ck")).to.equal(null); // the CRD's default: off
    expect(tensorboardDir(enabled(true), "")).to.equal(null); // no checkpoint directory
  });

  it("writes every step's and evaluation's scalars when enabled, and no file when not", async () => {
    for (const on of [true, false]) {
      const root = tmp();
      const dir = tensorboardDir(enabled(on), root);
      const { metrics } = setup(1);
      const tb = dir
        ? new TensorBoardLog({ dir, logger: silentLogger(), errors: metrics.tensorboardErrors })
        : null;
      await run(tb);
      if (!on) {
        expect(readdirSync(root)).to.deep.equal([]);
        continue;
      }
      const files = readdirSync(dir!);
      expect(files).to.have.length(1);
      expect(files[0]).to.match(/^events\.out\.tfevents\.\d{10}\./);
      const events = readEventFile(join(dir!, files[0]!));
      expect(events[0]!.fileVersion).to.equal("brain.Event:2");
      expect(events[1]).to.include({ step: 0, sessionStatus: 1 }); // SessionLog START before the first record
      const curves = events.slice(2);
      expect(
        curves.map((e) => `${e.scalars!["eval/accuracy"] === undefined ? "step" : "eval"}${e.step}`),
      ).to.deep.equal(["eval0", "step1", "step2", "eval2", "step3", "step4", "eval4", "step5", "eval5"]);
      const step3 = curves.find((e) => e.step === 3)!.scalars!;
      expect(step3).to.deep.equal({
        "rollout/reward_mean": Math.fround(step3["rollout/reward_mean"]!),
        "rollout/groups": 2,
        "rollout/samples": 4,
        "train/loss": 0.5,
        "train/kl": Math.fround(0.01),
        "train/grad_norm": 2,
        "train/entropy": 1,
        "train/logprob_gap": Math.fround(0.02),
        "train/policy_version": 3,
        "time/step_seconds": Math.fround(step3["time/step_seconds"]!),
        "time/train_seconds": Math.fround(0.1),
      });
      expect(step3["rollout/reward_mean"]).to.be.within(0, 1);
      expect(
        curves.find((e) => e.step === 5 && e.scalars!["eval/accuracy"] !== undefined)!.scalars,
      ).to.deep.equal({
        "eval/accuracy": 1,
        "eval/f1": 1,
        "eval/reward": 1.25,
        "eval/mean_turns": 1,
        "eval/questions": 3,
        "eval/scored": 3,
        "eval/answered": 3,
        "eval/dropped": 0,
      }); // no judge: no eval/judge_* tags
    }
  });

  it("keeps training when the event files cannot be written: logs the path, counts each failure", async () => {
    const root = tmp();
    writeFileSync(join(root, "checkpoints"), "a file where the directory should be");
    const lines = new PassThrough();
    const logged: Record<string, unknown>[] = [];
    lines.on("data", (b: Buffer) =>
      logged.push(
        ...b
          .toString()
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l)),
      ),
    );
    const logger = createLogger({ component: "trainer", format: "json", stream: lines });
    const registry = createRegistry();
    const metrics = new TrainerMetrics(registry);
    const dir = tensorboardDir(enabled(true), join(root, "checkpoints"))!;
    const learner = await run(new TensorBoardLog({ dir, logger, errors: metrics.tensorboardErrors }));
    expect(learner.steps.map((s) => s.step)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(await registry.metrics()).to.match(/l0_trainer_tensorboard_errors_total 9\b/); // 5 steps + 4 evaluations
    const errors = logged.filter((l) => l.level === "error");
    expect(errors).to.have.length(9);
    expect(errors[0]!.path).to.match(/checkpoints\/tensorboard\/events\.out\.tfevents\./);
    expect(String(errors[0]!.error)).to.include(String(errors[0]!.path)).and.include("ENOTDIR");
  });

  it("a restarted trainer's new file makes TensorBoard drop the steps it repeats", () => {
    const dir = tmp();
    const { metrics } = setup(1);
    const attempt = (t: number, steps: number[], loss: number) => {
      const tb = new TensorBoardLog({
        dir,
        logger: silentLogger(),
        errors: metrics.tensorboardErrors,
        clock: () => t,
      });
      for (const step of steps) tb.record({ kind: "step", step, policyVersion: step, unixMs: t, loss });
      tb.close();
    };
    attempt(1_000_000, [1, 2, 3, 4], 1); // killed after step 4, checkpoint at step 2
    attempt(2_000_000, [3, 4, 5], 2); // resumed from step 2
    const loss = tensorboardView(dir).get("train/loss")!;
    expect([...loss.entries()].sort(([a], [b]) => a - b)).to.deep.equal([
      [1, 1],
      [2, 1],
      [3, 2],
      [4, 2],
      [5, 2],
    ]);
  });

  it("a judged evaluation adds the judge's grades and ratios as eval/judge_* curves", () => {
    const dir = tmp();
    const { metrics } = setup(1);
    const tb = new TensorBoardLog({ dir, logger: silentLogger(), errors: metrics.tensorboardErrors });
    const judge = {
      correct: 4,
      incorrect: 2,
      notAttempted: 1,
      failed: 3,
      accuracy: 0.5,
      accuracyGivenAttempted: 0.75,
      fScore: 0.6,
    };
    tb.record({ kind: "eval", step: 2, policyVersion: 2, unixMs: 1, accuracy: 0.25, judge });
    const [, , e] = readEventFile(tb.path);
    expect(e!.scalars).to.deep.equal({
      "eval/accuracy": 0.25,
      "eval/judge_correct": 4,
      "eval/judge_incorrect": 2,
      "eval/judge_not_attempted": 1,
      "eval/judge_failed": 3,
      "eval/judge_accuracy": 0.5,
      "eval/judge_accuracy_given_attempted": 0.75,
      "eval/judge_f_score": Math.fround(0.6),
    });
  });

  it("docs/metrics.md lists every tag; every gauge is in the metric catalog with the same meaning", () => {
    const doc = readFileSync(join(import.meta.dirname, "..", "..", "docs", "metrics.md"), "utf8").replace(
      / *\| */g,
      " | ",
    );
    for (const s of SCALARS) {
      const labels = Object.entries(s.gauge?.labels ?? {}).map(([k, v]) => `${k}="${v}"`);
      const name = s.gauge ? `\`${s.gauge.name}${labels.length ? `{${labels.join(",")}}` : ""}\`` : "—";
      const gauge = name.replace(/[{}]/g, "\\$&");
      expect(doc, s.tag).to.match(new RegExp(`\\| \`${s.tag}\` \\| ${s.kind} \\| [^|]+ \\| ${gauge} \\|`));
      if (s.gauge)
        expect(
          METRICS.find((m) => m.name === s.gauge!.name),
          s.gauge.name,
        ).to.include({ type: "gauge", help: s.gauge.help });
    }
  });
});
