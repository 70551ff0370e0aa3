// Stats.empty_steps: consecutive served batches without a trained sample (the operator fails a
// run on it, operator/trainingrun/stuck.ts nothingTrained), reset by a step that trains.
import { expect } from "chai";
import { rightAnswer, serve, settings, traj, type Served } from "./helpers.js";

describe("hub: empty steps", function () {
  this.timeout(20_000);
  let s: Served | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  it("counts batches whose groups were all dropped, and resets after one that trains", async () => {
    // Dynamic sampling drops a group whose rewards are all equal; one group per step, no over-sampling.
    const cfg = settings({
      algorithm: { groupSize: 2, batchSize: 1, dynamicSampling: true, maxOversample: 1 },
    });
    s = await serve({ settings: cfg });
    const step = async (vary: boolean) => {
      const { step } = await s!.hub.beginStep(0);
      const tasks = (await s!.rpc.lease("w", 5)).tasks;
      for (const [i, t] of tasks.entries())
        await s!.rpc.submit(traj(t, { answer: vary && i === 0 ? rightAnswer(t) : "wrong" }));
      return s!.hub.batch(step);
    };
    expect((await s.rpc.stats()).emptySteps).to.equal(0);
    expect((await step(false)).groups).to.have.length(0);
    expect((await s.rpc.stats()).emptySteps).to.equal(1);
    await step(false);
    expect((await s.rpc.stats()).emptySteps).to.equal(2);
    expect((await step(true)).groups).to.have.length(1);
    expect((await s.rpc.stats()).emptySteps).to.equal(0);
  });
});
