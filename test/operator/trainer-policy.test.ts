// Table tests of the trainer's gang policy (no server): what to do with the trainer Job (create,
// wait, restart, fail) and why a trainer pod failed, from its termination messages.
import { expect } from "chai";
import { trainerAction, trainerFailureFromPods, viewJob } from "../../operator/trainingrun/policy.js";

describe("operator policies", () => {
  const job = (conds: { type: string; status: string; message?: string }[]) =>
    viewJob({ metadata: { name: "j" }, status: { conditions: conds } }, 1);
  const actions: [string, ReturnType<typeof viewJob> | undefined, number, number, string][] = [
    ["no job: create", undefined, 0, 3, "create"],
    ["running: wait", job([]), 0, 3, "wait"],
    ["complete", job([{ type: "Complete", status: "True" }]), 0, 3, "complete"],
    [
      "failed with budget: restart",
      job([{ type: "Failed", status: "True", message: "pod 1 exited 137" }]),
      1,
      3,
      "restart",
    ],
    ["failed, budget spent: fail", job([{ type: "Failed", status: "True" }]), 3, 3, "fail"],
    ["failed, maxRestarts 0: fail", job([{ type: "Failed", status: "True" }]), 0, 0, "fail"],
    ["a False Failed condition is no failure", job([{ type: "Failed", status: "False" }]), 0, 3, "wait"],
  ];
  it("trainer action: a configuration failure fails at once, with its own reason, budget or not", () => {
    const failed = { reason: "InvalidField", message: "spec.dataset.path: cannot read /d", config: true };
    const a = trainerAction({ ...job([{ type: "Failed", status: "True" }])!, failed }, 0, 3);
    expect(a).to.deep.equal({
      kind: "fail",
      why: {
        reason: "InvalidField",
        message: "not restarted (configuration): spec.dataset.path: cannot read /d",
      },
    });
  });

  for (const [what, view, restarts, max, want] of actions)
    it(`trainer action: ${what}`, () => {
      const a = trainerAction(view, restarts, max);
      expect(a.kind).to.equal(want);
      if (a.kind === "restart") expect(a.nextAttempt).to.equal(2);
      if (a.kind === "fail") expect(a.why.reason).to.equal("BackoffLimitExceeded");
    });
});

describe("operator: why a trainer pod failed (termination messages)", () => {
  const pod = (...containers: [string, number, string?][]) => ({
    status: {
      containerStatuses: containers.map(([name, exitCode, message]) => ({
        name,
        state: { terminated: { exitCode, ...(message === undefined ? {} : { message }) } },
      })),
    },
  });
  const cases: [
    string,
    ReturnType<typeof pod>[],
    { reason: string; message: string; config?: boolean } | undefined,
  ][] = [
    ["no pods", [], undefined],
    ["killed without a message", [pod(["trainer", 137])], undefined],
    ["a success says nothing", [pod(["trainer", 0, "done"])], undefined],
    [
      "the trainer's Reason: message",
      [pod(["trainer", 137]), pod(["trainer", 1, "EngineDegraded: e0 failed to load v4\n"])],
      { reason: "EngineDegraded", message: "trainer exited 1 (EngineDegraded): e0 failed to load v4" },
    ],
    [
      "log lines (FallbackToLogsOnError) keep a generic reason",
      [pod(["trainer", 2, '{"level":"error","message":"boom"}'])],
      {
        reason: "TrainerFailed",
        message: 'trainer exited 2 (TrainerFailed): {"level":"error","message":"boom"}',
        config: true,
      },
    ],
    [
      "exit 2 is the configuration: marked so the gang restart does not retry it",
      [pod(["trainer", 2, "InvalidField: spec.dataset.evalPath: cannot read /d/eval.jsonl"])],
      {
        reason: "InvalidField",
        message: "trainer exited 2 (InvalidField): spec.dataset.evalPath: cannot read /d/eval.jsonl",
        config: true,
      },
    ],
  ];
  for (const [name, pods, want] of cases)
    it(name, () => expect(trainerFailureFromPods(pods)).to.deep.equal(want));

  it("keeps the end of a long message", () => {
    const v = trainerFailureFromPods([pod(["trainer", 1, "Internal: " + "x".repeat(3000) + "END"])])!;
    expect(v.message.length).to.be.below(1100);
    expect(v.message.endsWith("END")).to.equal(true);
  });
});
