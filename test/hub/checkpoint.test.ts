// Hub restart: the checkpoint is written atomically, holds step, policy version, dataset
// position and the questions still in flight, and a new hub resumes from it; workers that held
// leases of the old hub are told NOT_FOUND and simply lease again.
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { l0 } from "../../lib/proto.js";
import { checkpointPath, readCheckpoint, writeCheckpoint } from "../../images/trainer/hub/checkpoint.js";
import { dataset, rightAnswer, serve, settings, traj, type Served } from "./helpers.js";

describe("hub checkpoint and restart", function () {
  this.timeout(20_000);
  const cfg = settings({ algorithm: { groupSize: 1, batchSize: 2, dynamicSampling: false } });
  let a: Served | undefined;
  let b: Served | undefined;
  afterEach(async () => {
    await a?.close();
    await b?.close();
    a = b = undefined;
  });

  it("resumes step, policy version and the in-flight questions after a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-hub-cp-"));
    const path = checkpointPath(dir);
    a = await serve({ settings: cfg });
    const s1 = await a.hub.beginStep(4);
    for (const t of (await a.rpc.lease("w", 5)).tasks) await a.rpc.submit(traj(t, { version: 4 }));
    await a.hub.batch(s1.step);
    await a.hub.beginStep(5);
    const inFlight = (await a.rpc.lease("w", 5)).tasks;
    expect(inFlight).to.have.length(2);
    await a.rpc.submit(traj(inFlight[0]!, { version: 5 })); // done but not served: re-sampled after restart
    writeCheckpoint(path, a.hub.snapshot());
    expect(readdirSync(dir)).to.deep.equal(["hub-state.json"]); // no temp file left behind
    await a.close();
    a = undefined;

    const cp = readCheckpoint(path)!;
    expect(cp).to.deep.include({ step: 1, policyVersion: 5 });
    expect(cp.pending).to.have.length(2);
    b = await serve({ settings: cfg, resume: cp });
    expect(await b.rpc.stats()).to.deep.include({ step: 1, policyVersion: 5, completed: 3 });
    const hb = await b.rpc.heartbeat("w", [inFlight[1]!.leaseId!]);
    expect(hb.leases[0]!.status).to.equal(l0.v1.LeaseStatus.LEASE_STATUS_NOT_FOUND);
    const { step } = await b.hub.beginStep(5);
    expect(step).to.equal(2);
    const again = (await b.rpc.lease("w", 5)).tasks;
    expect(again.map((t) => t.prompt).sort()).to.deep.equal(inFlight.map((t) => t.prompt).sort());
    expect(again.every((t) => !inFlight.some((o) => o.leaseId === t.leaseId))).to.equal(true);
    for (const t of again) await b.rpc.submit(traj(t, { version: 5 }));
    expect((await b.hub.batch(step)).groups).to.have.length(2);
  });

  it("continues the dataset where it stopped instead of starting over", async () => {
    a = await serve({ settings: cfg });
    const s1 = await a.hub.beginStep(0);
    const first = (await a.rpc.lease("w", 5)).tasks;
    for (const t of first) await a.rpc.submit(traj(t));
    await a.hub.batch(s1.step);
    const cp = a.hub.snapshot();
    expect(cp.pending).to.deep.equal([]);
    b = await serve({ settings: cfg, resume: cp });
    await b.hub.beginStep(0);
    const next = (await b.rpc.lease("w", 5)).tasks;
    expect(next.map((t) => t.prompt)).to.not.include.members(first.map((t) => t.prompt));
    // group ids keep counting, so logs of the two hub lives do not collide
    expect(next.map((t) => t.groupId)).to.not.include.members(first.map((t) => t.groupId));
  });

  it("keeps the last evaluation across a restart; an older checkpoint keeps its accuracy at its step, or reads as none", async () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-hub-cp-"));
    const path = checkpointPath(dir);
    a = await serve({ settings: cfg, eval: dataset(2) });
    expect((await a.rpc.stats()).lastEval).to.equal(null);
    const done = a.hub.evaluate(0);
    const [right, wrong] = (await a.rpc.lease("w", 2)).tasks;
    await a.rpc.submit(traj(right!, { answer: rightAnswer(right!) }));
    await a.rpc.submit(traj(wrong!, { answer: "no" }));
    await done;
    writeCheckpoint(path, a.hub.snapshot());
    const cp = readCheckpoint(path)!;
    expect(cp.evaluation).to.deep.equal({ step: 0, accuracy: 0.5, judge: null });
    b = await serve({ settings: cfg, resume: cp });
    const stats = await b.rpc.stats();
    expect(stats.evalAccuracy).to.equal(0.5);
    expect(stats.lastEval).to.deep.include({ accuracy: 0.5, judge: null });
    expect(Number(stats.lastEval!.step)).to.equal(0);

    const { evaluation: _, ...older } = cp;
    writeFileSync(path, JSON.stringify({ ...older, evalAccuracy: 0.5 }));
    expect(readCheckpoint(path)!.evaluation).to.deep.equal({ step: cp.step, accuracy: 0.5, judge: null });
    writeFileSync(path, JSON.stringify(older));
    expect(readCheckpoint(path)!.evaluation).to.equal(null);
  });

  it("treats a missing checkpoint as a fresh start and a corrupt one as an error naming the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-hub-cp-"));
    expect(readCheckpoint(join(dir, "none.json"))).to.equal(null);
    const bad = join(dir, "bad.json");
    writeFileSync(bad, '{"format": "l0-hub-checkpoint/v1", "step": "x"');
    expect(() => readCheckpoint(bad)).to.throw(bad);
    writeFileSync(bad, '{"format": "l0-hub-checkpoint/v1", "step": "x"}');
    expect(() => readCheckpoint(bad)).to.throw(/field step/);
  });
});
