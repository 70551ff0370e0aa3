// A run that trains on nothing never ends Succeeded: the hub's empty_steps (consecutive steps
// without a trained sample) make it Degraded, then Failed at spec.trainer.maxEmptySteps, and its
// trainer Job is suspended so it stops holding GPUs. Against the in-process API server.
import { expect } from "chai";
import { l0 } from "../../lib/proto.js";
import { toHubView } from "../../operator/trainingrun/hub.js";
import { nothingTrained } from "../../operator/trainingrun/stuck.js";
import { type Env, TR, cond, eventually, fakeHub, getRun, run, startEnv } from "./harness.js";

describe("operator: a run that trains nothing", function () {
  this.timeout(20_000);

  const table: [number, number, string | undefined][] = [
    [0, 3, undefined],
    [1, 3, "degraded"],
    [2, 3, "degraded"],
    [3, 3, "failed"],
    [7, 3, "failed"],
    [1, 1, "failed"],
  ];
  for (const [empty, max, want] of table)
    it(`nothingTrained(${empty}, max ${max}) -> ${want ?? "nothing"}`, () => {
      const v = nothingTrained(empty, max);
      expect(v && Object.keys(v)[0]).to.equal(want);
      if (v) expect(Object.values(v)[0]!.reason).to.equal("NothingTrained");
    });

  it("the hub's Stats.empty_steps reaches the reconciler (toHubView keeps it)", () => {
    expect(
      toHubView(l0.v1.StatsResponse.decode(l0.v1.StatsResponse.encode({ emptySteps: 2 }).finish()))
        .emptySteps,
    ).to.equal(2);
  });

  let env: Env;
  beforeEach(async () => {
    env = await startEnv({ kubelet: "ready", jobPods: "manual" });
  });
  afterEach(() => env.stop());

  it("goes Degraded after an empty step, then Failed, and suspends the trainer", async () => {
    const hub = fakeHub();
    await env.startOperator({ hub, statsIntervalMs: 50 });
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("a", { trainer: { gpusPerNode: 0, maxEmptySteps: 3 } }),
    });
    hub.set({ step: 1, emptySteps: 0 });
    await eventually(() => getRun(env, "a")?.status?.phase === "Running", "Running");
    hub.set({ step: 2, emptySteps: 1 });
    const degraded = await eventually(() => {
      const c = cond(getRun(env, "a"), "Degraded");
      return c?.status === "True" && c.reason === "NothingTrained" && c;
    }, "Degraded NothingTrained");
    expect(degraded.message).to.match(/1 consecutive training step/);
    expect(getRun(env, "a")!.status.phase).to.equal("Running");
    hub.set({ step: 4, emptySteps: 3 });
    await eventually(() => getRun(env, "a")?.status?.phase === "Failed", "Failed");
    const failed = cond(getRun(env, "a"), "Failed");
    expect(failed.reason).to.equal("NothingTrained");
    expect(failed.message).to.match(/maxEmptySteps is 3/);
    await eventually(
      () => env.kube.get("batch/v1", "Job", "default", "a-trainer-0")?.spec.suspend === true,
      "trainer suspended",
    );
  });
});
