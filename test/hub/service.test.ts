// The hub over real gRPC on port 0 with a real client: lease -> submit -> batch, expiry and
// heartbeats, a worker dying mid-episode, duplicate and late submits, auth, malformed messages,
// infrastructure retries and group drops, dynamic sampling, staleness, long polls and Stats.
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { isL0Error, type L0Error } from "../../lib/errors.js";
import { call, channelOptions } from "../../lib/grpc.js";
import { l0, RolloutClient } from "../../lib/proto.js";
import { toTrainSamples } from "../../images/trainer/hub/samples.js";
import { END, manualClock, rightAnswer, serve, settings, traj, type Served } from "./helpers.js";

async function rejects(p: Promise<unknown>): Promise<L0Error> {
  try {
    await p;
  } catch (err) {
    if (isL0Error(err)) return err;
    throw err;
  }
  throw new Error("expected the call to fail");
}

async function metric(s: Served, name: string, labels = ""): Promise<number> {
  const text = await s.registry.metrics();
  const re = new RegExp(
    `^${name}${labels ? `\\{${labels.replace(/[{}"]/g, (c) => "\\" + c)}[^}]*\\}` : ""}(?:\\{[^}]*\\})? (\\S+)$`,
    "m",
  );
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
}

describe("hub over gRPC", function () {
  this.timeout(20_000);
  let s: Served;
  afterEach(async () => s?.close());

  it("leases a step's groups, scores submits and serves a batch with advantages; no ground truth leaves", async () => {
    s = await serve({
      settings: settings({ algorithm: { groupSize: 2, batchSize: 2, name: "grpo", normalizeStd: false } }),
    });
    const { step } = await s.hub.beginStep(3);
    expect(step).to.equal(1);
    const { tasks } = await s.rpc.lease("w", 10);
    expect(tasks).to.have.length(4);
    for (const t of tasks) {
      expect(t).to.deep.include({ policyVersion: 3, attempt: 1, eval: false });
      expect(t.agent).to.deep.include({ maxTurns: 8, model: "tiny" });
      expect(t.run).to.deep.include({ namespace: "ns", name: "qa" });
      expect(Number(t.deadlineUnixMs)).to.be.greaterThan(Date.now());
      const bytes = Buffer.from(l0.v1.Task.encode(t).finish()).toString("latin1");
      expect(bytes).to.not.contain(rightAnswer(t)); // ground truth stays in the hub
    }
    const groups = new Map<string, l0.v1.ITask[]>();
    for (const t of tasks) groups.set(t.groupId!, [...(groups.get(t.groupId!) ?? []), t]);
    expect([...groups.values()].map((g) => g.length)).to.deep.equal([2, 2]);
    const batchP = s.hub.batch(step);
    for (const [a, b] of groups.values()) {
      expect(await s.rpc.submit(traj(a!, { answer: rightAnswer(a!), version: 3 }))).to.deep.include({
        accepted: true,
      });
      expect(await s.rpc.submit(traj(b!, { answer: "nope", version: 3 }))).to.deep.include({
        accepted: true,
      });
    }
    const batch = await batchP;
    expect(batch).to.deep.include({ step: 1, policyVersion: 3, short: false });
    expect(batch.groups).to.have.length(2);
    // The batch holds the trajectories; the book keeps its served groups without them.
    for (const g of batch.groups) {
      const rec = s.hub.book.groups.get(g.groupId)!;
      expect(rec.status).to.equal("served");
      expect(rec.tasks.map((t) => t.result)).to.deep.equal([undefined, undefined]);
    }
    for (const g of batch.groups) {
      // rewards (the CRD's defaults, per-turn terms averaged over the 2 turns): right = format
      // 0.125 + code execution 0.125 (x F1 1) + EM 0.5 + F1 0.4 + has-answer 0.1 = 1.25; wrong =
      // format 0.125 + has-answer 0.1 = 0.225 (its code execution is weighted by its F1, 0);
      // GRPO without std: +-0.5125
      expect(g.trajectories.map((t) => Number(t.reward.toFixed(6)))).to.deep.equal([1.25, 0.225]);
      expect(g.trajectories.map((t) => t.advantages.map((x) => Number(x.toFixed(6))))).to.deep.equal([
        [0.5125, 0.5125],
        [-0.5125, -0.5125],
      ]);
    }
    const samples = toTrainSamples(batch);
    expect(samples).to.have.length(8);
    expect(samples[0]).to.deep.include({
      responseTokenIds: [10, 11],
      samplerLogprobs: [-0.5, -0.25],
      advantage: 0.5125,
    });
    expect(samples[0]!.sampleId).to.match(/\/0$/);
    const stats = await s.rpc.stats();
    expect(stats).to.deep.include({ completed: 4, step: 1, policyVersion: 3, backlog: 0 });
    expect(stats.phase).to.equal(l0.v1.HubPhase.HUB_PHASE_TRAINING);
    expect(stats.rewardMean).to.be.closeTo((1.25 + 0.225) / 2, 1e-9);
    expect(stats.llmSecondsPerTurn).to.be.closeTo(0.5, 1e-9);
    expect(stats.activeWorkers).to.equal(1);
    // strict on-policy: nothing is leased while the batch is with the learner
    expect((await s.rpc.lease("w", 10)).tasks).to.have.length(0);
  });

  it("requeues an expired lease, keeps a heartbeated one, and a dead worker loses nothing", async () => {
    const clock = manualClock();
    s = await serve({
      settings: settings({ algorithm: { groupSize: 2, batchSize: 1, dynamicSampling: false } }),
      clock: clock.now,
      leaseTimeoutMs: 1000,
      backoffBaseMs: 100,
    });
    const { step } = await s.hub.beginStep(0);
    const [a, b] = (await s.rpc.lease("w1", 2)).tasks;
    clock.advance(800);
    const hb = await s.rpc.heartbeat("w1", [a!.leaseId!]);
    expect(hb.leases[0]).to.deep.include({ status: l0.v1.LeaseStatus.LEASE_STATUS_ACTIVE });
    expect(Number(hb.leases[0]!.deadlineUnixMs)).to.equal(clock.now() + 1000);
    clock.advance(700); // b's deadline passed, a's was extended; w1 "dies" now
    expect((await s.rpc.lease("w2", 5)).tasks).to.have.length(0); // b is in backoff
    clock.advance(150);
    const again = (await s.rpc.lease("w2", 5)).tasks;
    expect(again.map((t) => [t.taskId, t.attempt])).to.deep.equal([[b!.taskId, 2]]);
    expect(again[0]!.leaseId).to.not.equal(b!.leaseId);
    const old = await s.rpc.heartbeat("w1", [b!.leaseId!, "never-issued"]);
    expect(old.leases.map((l) => l.status)).to.deep.equal([
      l0.v1.LeaseStatus.LEASE_STATUS_NOT_FOUND,
      l0.v1.LeaseStatus.LEASE_STATUS_NOT_FOUND,
    ]);
    clock.advance(2000); // a expires too: w1 is gone for good
    const third = (await s.rpc.lease("w2", 5)).tasks; // both back off: a 100 ms, b (2nd failure) 200 ms
    clock.advance(250);
    const fourth = [...third, ...(await s.rpc.lease("w2", 5)).tasks];
    // b's second lease (no heartbeat from w2) also expired; both come back to w2
    expect(fourth.map((t) => t.taskId).sort()).to.deep.equal([a!.taskId, b!.taskId].sort());
    for (const t of fourth)
      await s.rpc.submit(traj(t, { answer: t.taskId === a!.taskId ? rightAnswer(t) : "x" }));
    const batch = await s.hub.batch(step);
    expect(batch.groups[0]!.trajectories).to.have.length(2);
    expect(await metric(s, "l0_tasks_retried_total")).to.equal(3);
    expect(await metric(s, "l0_episodes_total", 'outcome="lease_expired"')).to.equal(3);
  });

  it("answers duplicate submits idempotently and late ones with FAILED_PRECONDITION / NOT_FOUND", async () => {
    const clock = manualClock();
    s = await serve({
      settings: settings({ algorithm: { groupSize: 2, batchSize: 1, dynamicSampling: false } }),
      clock: clock.now,
      leaseTimeoutMs: 1000,
      backoffBaseMs: 10,
    });
    await s.hub.beginStep(0);
    const [a, b] = (await s.rpc.lease("w1", 2)).tasks;
    const ta = traj(a!);
    expect(await s.rpc.submit(ta)).to.deep.include({ accepted: true, duplicate: false });
    expect(await s.rpc.submit(ta)).to.deep.include({ accepted: true, duplicate: true });
    expect((await s.rpc.stats()).completed).to.equal(1);
    // b expires, goes to w2, w2 finishes it; w1's late answer for b is refused
    clock.advance(1100);
    await s.rpc.lease("w2", 1);
    clock.advance(20);
    const [b2] = (await s.rpc.lease("w2", 1)).tasks;
    expect(b2!.taskId).to.equal(b!.taskId);
    await s.rpc.submit(traj(b2!));
    const late = await rejects(s.rpc.submit(traj(b!)));
    expect(late.kind).to.equal("FailedPrecondition");
    const hb = await s.rpc.heartbeat("w2", [b2!.leaseId!]);
    expect(hb.leases[0]!.status).to.equal(l0.v1.LeaseStatus.LEASE_STATUS_FINISHED);
    const unknown = await rejects(
      s.rpc.submit({ ...traj(b!), leaseId: "no-such-lease", trajectoryId: "t-x" }),
    );
    expect(unknown.kind).to.equal("NotFound");
  });

  it("takes a late agent answer from an expired lease when the task is not finished yet", async () => {
    const clock = manualClock();
    s = await serve({
      settings: settings({ algorithm: { groupSize: 1, batchSize: 1, dynamicSampling: false } }),
      clock: clock.now,
      leaseTimeoutMs: 1000,
      backoffBaseMs: 10,
    });
    const { step } = await s.hub.beginStep(0);
    const [a] = (await s.rpc.lease("w1", 1)).tasks;
    clock.advance(1100);
    await s.rpc.lease("w2", 1);
    clock.advance(20);
    const [a2] = (await s.rpc.lease("w2", 1)).tasks;
    expect(await s.rpc.submit(traj(a!, { answer: rightAnswer(a!) }))).to.deep.include({ accepted: true });
    const hb = await s.rpc.heartbeat("w2", [a2!.leaseId!]);
    expect(hb.leases[0]!.status).to.equal(l0.v1.LeaseStatus.LEASE_STATUS_FINISHED);
    expect((await rejects(s.rpc.submit(traj(a2!)))).kind).to.equal("FailedPrecondition");
    expect((await s.hub.batch(step)).groups).to.have.length(1);
  });

  it("rejects calls without the run token and malformed messages naming the field", async () => {
    s = await serve({ settings: settings() });
    const raw = new RolloutClient(s.server.address, grpc.credentials.createInsecure(), channelOptions());
    try {
      const bad = await rejects(call(raw.stats, raw, {}, { token: "wrong", timeoutMs: 5000 }));
      expect(bad.kind).to.equal("Unauthenticated");
    } finally {
      raw.close();
    }
    await s.hub.beginStep(0);
    const cases: [() => Promise<unknown>, string][] = [
      [() => s.rpc.lease("w", 0), "max_tasks"],
      [() => s.rpc.lease("", 1), "worker_id"],
      [() => s.rpc.lease("w", 1, 60_000), "wait_ms"],
      [() => s.rpc.submit(null as unknown as l0.v1.ITrajectory), "trajectory"],
      [() => s.rpc.heartbeat("w", [""]), "leases[0].lease_id"],
    ];
    const [t] = (await s.rpc.lease("w", 1)).tasks;
    const mismatch = traj(t!);
    mismatch.turns![1]!.responseLogprobs = [-1];
    cases.push([() => s.rpc.submit(mismatch), "trajectory.turns[1].response_logprobs"]);
    cases.push([() => s.rpc.submit({ ...traj(t!), end: 0 }), "trajectory.end"]);
    cases.push([() => s.rpc.submit({ ...traj(t!), taskId: "other" }), "trajectory.task_id"]);
    for (const [p, field] of cases) {
      const err = await rejects(p());
      expect(err.kind, field).to.equal("InvalidArgument");
      expect(err.message.startsWith(field + ":"), `${err.message} names ${field}`).to.equal(true);
    }
    // over the server's explicit message limit (4 MiB in these tests): refused, not buffered
    const huge = traj(t!);
    huge.finalAnswer = "x".repeat(5 * 1024 * 1024);
    expect((await rejects(s.rpc.submit(huge))).kind).to.equal("ResourceExhausted");
    // the hub keeps working after all that
    expect((await s.rpc.submit(traj(t!))).accepted).to.equal(true);
  });

  it("retries infrastructure failures, then drops the whole group with the reason and never scores it", async () => {
    const clock = manualClock();
    s = await serve({
      settings: settings({
        algorithm: { groupSize: 2, batchSize: 1, dynamicSampling: false, maxOversample: 2 },
      }),
      clock: clock.now,
      maxAttempts: 2,
      backoffBaseMs: 100,
    });
    const { step } = await s.hub.beginStep(0);
    const [a, b] = (await s.rpc.lease("w1", 2)).tasks;
    await s.rpc.submit(traj(b!, { answer: "x" }));
    const r1 = await s.rpc.submit(traj(a!, { end: END.EPISODE_END_SANDBOX_FAILURE }));
    expect(r1).to.deep.include({ accepted: false });
    expect((await s.rpc.lease("w1", 2)).tasks).to.have.length(0); // backing off
    clock.advance(100);
    const [a2] = (await s.rpc.lease("w1", 2)).tasks;
    expect([a2!.taskId, a2!.attempt]).to.deep.equal([a!.taskId, 2]);
    const r2 = await s.rpc.submit(traj(a2!, { end: END.EPISODE_END_ENGINE_FAILURE }));
    expect(r2.detail).to.match(/dropped/);
    expect(await metric(s, "l0_groups_dropped_total", 'reason="engine_failure"')).to.equal(1);
    expect(await metric(s, "l0_reward_count")).to.equal(1); // only b was scored
    // the dropped group is replaced (over-sampling) and the batch fills from the new one
    const fresh = (await s.rpc.lease("w1", 5)).tasks;
    expect(fresh).to.have.length(2);
    expect(fresh[0]!.groupId).to.not.equal(a!.groupId);
    for (const t of fresh) await s.rpc.submit(traj(t, { answer: t === fresh[0] ? rightAnswer(t) : "x" }));
    const batch = await s.hub.batch(step);
    expect(batch.groups.map((g) => g.groupId)).to.deep.equal([fresh[0]!.groupId]);
    const stats = await s.rpc.stats();
    expect(stats).to.deep.include({ groupsDropped: 1, failed: 2, retried: 1 });
  });

  it("drops groups without signal and over-samples up to the cap, then serves a short batch", async () => {
    s = await serve({
      settings: settings({
        algorithm: { groupSize: 2, batchSize: 1, dynamicSampling: true, maxOversample: 2 },
      }),
    });
    const { step } = await s.hub.beginStep(0);
    const batchP = s.hub.batch(step);
    for (let i = 0; i < 2; i++) {
      const tasks = (await s.rpc.lease("w", 5)).tasks;
      expect(tasks).to.have.length(2);
      for (const t of tasks) await s.rpc.submit(traj(t, { answer: "same wrong answer" }));
    }
    const batch = await batchP;
    expect(batch).to.deep.include({ short: true });
    expect(batch.groups).to.have.length(0);
    expect(await metric(s, "l0_groups_dropped_total", 'reason="no_signal"')).to.equal(2);
    expect((await s.rpc.lease("w", 5)).tasks).to.have.length(0);
  });

  it("discards stale trajectories and re-samples them at the current version", async () => {
    s = await serve({
      settings: settings({
        algorithm: { groupSize: 1, batchSize: 1, maxStaleness: 1, dynamicSampling: false },
      }),
    });
    const { step } = await s.hub.beginStep(5);
    const [t] = (await s.rpc.lease("w", 1)).tasks;
    const r = await s.rpc.submit(traj(t!, { version: 3 }));
    expect(r).to.deep.include({ accepted: false });
    expect(r.detail).to.match(/stale/);
    const [again] = (await s.rpc.lease("w", 1)).tasks;
    expect(again!.taskId).to.equal(t!.taskId);
    expect((await s.rpc.submit(traj(again!, { version: 4 }))).accepted).to.equal(true); // 1 behind is allowed
    expect((await s.hub.batch(step)).groups).to.have.length(1);
    expect(await metric(s, "l0_trajectories_stale_total")).to.equal(1);
  });

  it("with maxStaleness > 0 samples the next step while training, and takes back what grew too stale", async () => {
    s = await serve({
      settings: settings({
        algorithm: { groupSize: 1, batchSize: 1, maxStaleness: 1, dynamicSampling: false },
      }),
    });
    const finish = async (version: number): Promise<void> => {
      const { step } = await s.hub.beginStep(version);
      const [t] = (await s.rpc.lease("w", 1)).tasks;
      await s.rpc.submit(traj(t!));
      await s.hub.batch(step);
    };
    await finish(0);
    // training step 1: the look-ahead group is leasable now, sampled with version 0
    const [ahead] = (await s.rpc.lease("w", 1)).tasks;
    expect(ahead!.policyVersion).to.equal(0);
    await s.rpc.submit(traj(ahead!));
    const s2 = await s.hub.beginStep(1); // lag 1 is allowed: the batch is already there
    expect((await s.hub.batch(s2.step)).groups[0]!.groupId).to.equal(ahead!.groupId);
    // training step 2: one look-ahead episode finished at version 1, then version 3 arrives
    const [late] = (await s.rpc.lease("w", 1)).tasks;
    expect(late!.policyVersion).to.equal(1);
    await s.rpc.submit(traj(late!));
    const s3 = await s.hub.beginStep(3);
    const [again] = (await s.rpc.lease("w", 1)).tasks;
    expect([again!.taskId, again!.policyVersion]).to.deep.equal([late!.taskId, 3]); // re-sampled
    await s.rpc.submit(traj(again!));
    expect((await s.hub.batch(s3.step)).groups).to.have.length(1);
    // a lease granted at version 3 is taken back when version 5 arrives
    const [held] = (await s.rpc.lease("w", 1)).tasks;
    expect(held!.policyVersion).to.equal(3);
    await s.hub.beginStep(5);
    const hb = await s.rpc.heartbeat("w", [held!.leaseId!]);
    expect(hb.leases[0]!.status).to.equal(l0.v1.LeaseStatus.LEASE_STATUS_NOT_FOUND);
    const [retaken] = (await s.rpc.lease("w", 1)).tasks;
    expect([retaken!.taskId, retaken!.policyVersion]).to.deep.equal([held!.taskId, 5]);
    expect(await metric(s, "l0_trajectories_stale_total")).to.equal(1);
    expect(await metric(s, "l0_tasks_retried_total")).to.equal(0); // revocations are not failures
  });

  it("answers a long-polling Lease as soon as work appears, and an empty one with retry_after_ms", async function () {
    this.timeout(10_000);
    s = await serve({ settings: settings({ algorithm: { groupSize: 1, batchSize: 1 } }) });
    const empty = await s.rpc.lease("w", 1, 0);
    expect(empty.tasks).to.have.length(0);
    expect(empty.retryAfterMs).to.be.greaterThan(0);
    // A poll that would wait 29 s: only the wake-up can answer it within this test's 10 s timeout.
    const polled = s.rpc.lease("w", 1, 29_000);
    await new Promise((r) => setTimeout(r, 50));
    await s.hub.beginStep(0);
    const res = await polled;
    expect(res.tasks).to.have.length(1);
  });

  it("releases leases on drain without counting a failure", async () => {
    s = await serve({ settings: settings({ algorithm: { groupSize: 2, batchSize: 1 } }) });
    await s.hub.beginStep(0);
    const tasks = (await s.rpc.lease("w1", 2)).tasks;
    const r = await s.rpc.release("w1", [tasks[0]!.leaseId!, "gone"]);
    expect(r.released).to.deep.equal([tasks[0]!.leaseId]);
    const [again] = (await s.rpc.lease("w2", 2)).tasks;
    expect([again!.taskId, again!.attempt]).to.deep.equal([tasks[0]!.taskId, 2]);
    expect(await s.rpc.stats()).to.deep.include({ failed: 0, retried: 0, leased: 2 });
  });

  it("runs held-out evaluation episodes that are scored, reported in Stats, and never batched", async () => {
    const evalDs = (await import("./helpers.js")).dataset(4);
    s = await serve({ settings: settings({ algorithm: { groupSize: 1, batchSize: 1 } }), eval: evalDs });
    const done = s.hub.evaluate(2);
    const tasks = (await s.rpc.lease("w", 10)).tasks;
    expect(tasks.map((t) => [t.eval, t.policyVersion])).to.deep.equal(Array(4).fill([true, 2]));
    for (const [i, t] of tasks.entries())
      await s.rpc.submit(traj(t, { answer: i < 3 ? rightAnswer(t) : "no" }));
    const r = await done;
    expect(r).to.deep.include({ accuracy: 0.75, scored: 4, dropped: 0 });
    expect((await s.rpc.stats()).evalAccuracy).to.equal(0.75);
  });

  it("exposes the metrics the issue names", async () => {
    s = await serve({ settings: settings({ algorithm: { groupSize: 1, batchSize: 1 } }) });
    await s.hub.beginStep(2);
    await s.rpc.lease("w", 1);
    const text = await s.registry.metrics();
    for (const name of [
      "l0_rollout_backlog",
      "l0_leases_active",
      "l0_episodes_total",
      "l0_episode_duration_seconds",
      "l0_reward",
      "l0_tasks_retried_total",
      "l0_groups_dropped_total",
      "l0_policy_version",
    ])
      expect(text).to.match(new RegExp(`^# TYPE ${name} `, "m"));
    expect(await metric(s, "l0_leases_active")).to.equal(1);
    expect(await metric(s, "l0_policy_version")).to.equal(2);
  });
});
