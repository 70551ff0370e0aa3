// The hub's held-out evaluation scored by `l0 eval`'s own scorers: EM, F1, reward and, with
// spec.evaluation.judge, the judge's grades from a real HTTP endpoint on loopback (the eval
// tests' fixtures). A judge that keeps failing is retried and counted as judge_failed, never as
// incorrect; a question dropped for infrastructure is in no mean and never sent to the judge;
// at most maxConcurrent requests are in flight; an aborted evaluation aborts the judge's request
// and its retries; without a judge the result carries none.
import { expect } from "chai";
import { type l0 } from "../../lib/proto.js";
import { type EvalJudge } from "../../images/trainer/hub/evaluation.js";
import { Judge } from "../../images/trainer/hub/judge.js";
import { hubSettings } from "../../images/trainer/hub/settings.js";
import { judgeServer, scriptedJudge } from "../eval/fixtures/judge.js";
import { resolvedRun } from "../fixtures/runs.js";
import { END, dataset, rightAnswer, serve, settings, traj, type Served } from "./helpers.js";

const evalJudge = (url: string, maxConcurrent = 2): EvalJudge => ({
  judge: new Judge({
    baseUrl: url,
    model: "grader",
    attempts: 3,
    timeoutMs: 5000,
    backoffMs: 1,
    sleep: () => Promise.resolve(),
  }),
  maxConcurrent,
});

/** Five held-out questions: right, right, wrong, no answer, and one lost to the sandbox. */
async function answerFive(s: Served): Promise<void> {
  const tasks = (await s.rpc.lease("w", 10)).tasks;
  expect(tasks).to.have.length(5);
  const plan: ((t: l0.v1.ITask) => l0.v1.ITrajectory)[] = [
    (t) => traj(t, { answer: rightAnswer(t) }),
    (t) => traj(t, { answer: ` ${rightAnswer(t).toUpperCase()}.` }),
    (t) => traj(t, { answer: "wrong" }),
    (t) => traj(t, { answer: null, end: END.EPISODE_END_MAX_TURNS }),
    (t) => traj(t, { answer: null, end: END.EPISODE_END_SANDBOX_FAILURE }),
  ];
  for (const [i, t] of tasks.entries()) await s.rpc.submit(plan[i]!(t));
}

describe("in-run evaluation with l0 eval's scorers", () => {
  let s: Served | undefined;
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await s?.close();
    s = undefined;
    for (const c of closers.splice(0)) await c();
  });
  const hubWith = async (judge: EvalJudge | null): Promise<Served> =>
    serve({
      settings: settings({ algorithm: { groupSize: 1, batchSize: 1 } }),
      eval: dataset(5),
      maxAttempts: 1,
      judge,
    });

  it("reports EM, F1, reward and the judge's grades, accuracy given attempted and F-score", async () => {
    const j = await scriptedJudge();
    closers.push(j.close);
    s = await hubWith(evalJudge(j.url));
    const done = s.hub.evaluate(2);
    await answerFive(s);
    const r = await done;
    expect(r).to.deep.include({ questions: 5, scored: 4, failed: 1, dropped: 1, answered: 3 });
    expect(r.em).to.equal(0.5);
    expect(r.accuracy).to.equal(r.em);
    expect(r.f1).to.equal(0.5);
    expect(r.reward).to.be.greaterThan(0);
    expect(r.judge).to.deep.include({ correct: 2, incorrect: 1, notAttempted: 1, failed: 0 });
    expect(r.judge!.accuracy).to.equal(2 / 4);
    expect(r.judge!.accuracyGivenAttempted).to.equal(2 / 3);
    expect(r.judge!.fScore).to.be.closeTo((2 * 0.5 * (2 / 3)) / (0.5 + 2 / 3), 1e-12);
  });

  it("retries a failing judge and counts what it could not grade as judge_failed, not incorrect", async () => {
    const j = await judgeServer([]); // every request: HTTP 500
    closers.push(j.close);
    s = await hubWith(evalJudge(j.url));
    const done = s.hub.evaluate(2);
    await answerFive(s);
    const r = await done;
    // Three answers, three requests each; no answer and the dropped question are never sent.
    expect(j.bodies).to.have.length(9);
    expect(r.judge).to.deep.include({ correct: 0, incorrect: 0, notAttempted: 1, failed: 3 });
    expect(r.judge!.accuracyGivenAttempted).to.equal(0);
    expect(r.em).to.equal(0.5);
  });

  it("grades a judge's answer once it recovers, sending the question, reference and answer", async () => {
    const j = await judgeServer([503, "A"]);
    closers.push(j.close);
    s = await serve({
      settings: settings({ algorithm: { groupSize: 1, batchSize: 1 } }),
      eval: dataset(1),
      judge: evalJudge(j.url),
    });
    const done = s.hub.evaluate(2);
    const [t] = (await s.rpc.lease("w", 1)).tasks;
    await s.rpc.submit(traj(t!, { answer: "Paris" }));
    const r = await done;
    expect(r.judge).to.deep.include({ correct: 1, failed: 0 });
    const last = j.bodies[1] as { model: string; messages: { content: string }[] };
    expect(last.model).to.equal("grader");
    expect(last.messages[1]!.content)
      .to.include("Question: q0?")
      .and.include("Reference answer: ans0")
      .and.include("Answer to grade: Paris");
  });

  it("keeps at most maxConcurrent judge requests in flight, the next one starting as one ends", async () => {
    const held: ((r: Response) => void)[] = [];
    let arrived: (() => void) | null = null;
    const fetch = (() =>
      new Promise<Response>((resolve) => {
        held.push(resolve);
        arrived?.();
      })) as typeof globalThis.fetch;
    const judge = new Judge({
      baseUrl: "http://judge",
      model: "m",
      attempts: 1,
      timeoutMs: 5000,
      backoffMs: 1,
      fetch,
    });
    s = await serve({
      settings: settings({ algorithm: { groupSize: 1, batchSize: 1 } }),
      eval: dataset(4),
      judge: { judge, maxConcurrent: 2 },
    });
    const done = s.hub.evaluate(2);
    for (const t of (await s.rpc.lease("w", 4)).tasks)
      await s.rpc.submit(traj(t, { answer: rightAnswer(t) }));
    expect(held).to.have.length(2);
    const reply = () => new Response(JSON.stringify({ choices: [{ message: { content: "A" } }] }));
    const next = new Promise<void>((r) => (arrived = r));
    held[0]!(reply());
    await next;
    expect(held).to.have.length(3);
    for (const r of held.slice(1)) r(reply());
    await new Promise<void>((r) => (arrived = r));
    held[3]!(reply());
    expect((await done).judge).to.deep.include({ correct: 4, failed: 0 });
  });

  it("an aborted evaluation stops the judge's request in flight and its retries", async () => {
    const signals: AbortSignal[] = [];
    let arrived: (() => void) | null = null;
    const fetch = ((_url: string, init: RequestInit) =>
      new Promise<Response>((_, reject) => {
        signals.push(init.signal!);
        init.signal!.addEventListener("abort", () => reject(new Error("aborted")));
        arrived?.();
      })) as typeof globalThis.fetch;
    const judge = new Judge({
      baseUrl: "http://judge",
      model: "m",
      attempts: 3,
      timeoutMs: 60_000,
      backoffMs: 1,
      sleep: () => Promise.resolve(),
      fetch,
    });
    s = await serve({
      settings: settings({ algorithm: { groupSize: 1, batchSize: 1 } }),
      eval: dataset(1),
      judge: { judge, maxConcurrent: 1 },
    });
    const stop = new AbortController();
    const done = s.hub.evaluate(2, { signal: stop.signal });
    const asked = new Promise<void>((r) => (arrived = r));
    const [t] = (await s.rpc.lease("w", 1)).tasks;
    await s.rpc.submit(traj(t!, { answer: "x" }));
    await asked;
    stop.abort();
    const err = await done.then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/evaluation aborted/);
    await new Promise((r) => setImmediate(r)); // a retry would have been asked by now
    expect(signals).to.have.length(1);
    expect(signals[0]!.aborted).to.equal(true);
  });

  it("without a judge: the same EM, F1 and reward, and no judge figures", async () => {
    s = await hubWith(null);
    const done = s.hub.evaluate(2);
    await answerFive(s);
    const r = await done;
    expect(r).to.deep.include({ questions: 5, scored: 4, dropped: 1, judge: null });
    expect([r.em, r.f1]).to.deep.equal([0.5, 0.5]);
  });

  it("takes the judge's settings from spec.evaluation.judge, defaults from the CRD", () => {
    const run = (evaluation?: object) =>
      resolvedRun(
        { dataset: { path: "t.jsonl", evalPath: "e.jsonl" }, workerPoolRef: { name: "p" }, evaluation },
        "qa",
        "ns",
      );
    expect(hubSettings(run()).judge).to.equal(undefined);
    expect(
      hubSettings(run({ judge: { url: "http://judge:8000", model: "m", secretRef: { name: "k" } } })).judge,
    ).to.deep.equal({
      url: "http://judge:8000",
      model: "m",
      attempts: 3,
      timeoutMs: 60_000,
      maxConcurrent: 8,
      keyed: true,
    });
  });
});
