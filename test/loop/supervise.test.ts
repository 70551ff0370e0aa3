// How `l0 local` treats an exit (pure decisions), reports it, shows the warm start, and where it
// picks ports.
import { expect } from "chai";
import {
  exitAction,
  exitReport,
  pickRange,
  readableLine,
  warmLine,
  warmProgress,
} from "../../local/supervise.js";

describe("l0 local supervision", () => {
  const actions: [string, number | null, boolean, number, number, string][] = [
    ["a crash is restarted", 1, false, 0, 3, "restart"],
    ["a kill is restarted", 137, false, 2, 3, "restart"],
    ["the budget spent: given up", 1, false, 3, 3, "give-up"],
    ["configuration stops the run, budget or not", 2, false, 0, 3, "stop-run"],
    ["configuration with no budget still stops the run", 2, false, 3, 3, "stop-run"],
    ["after the run: nothing", 1, true, 0, 3, "ignore"],
    ["a clean exit after the run: nothing", 0, true, 0, 3, "ignore"],
  ];
  for (const [what, code, over, restarts, max, want] of actions)
    it(`exit action: ${what}`, () => expect(exitAction(code, over, restarts, max)).to.equal(want));

  it("reports which component, how it exited, its last log lines readable, and the log", () => {
    const text = exitReport(
      "worker-0",
      2,
      [
        '{"level":"error","message":"cannot start","timestamp":"t","error":"no corpus","line":3}',
        "l0 worker: invalid configuration: spec.workers.tools.search.corpusPath: cannot read /c",
      ],
      "/r/logs/worker-0.log",
      "stopping the run",
    );
    // The program's own one-line reason, when it wrote one last, says it all.
    expect(text.split("\n")).to.deep.equal([
      "l0 local: worker-0 stopped on its configuration or input (exit code 2); stopping the run",
      "    | l0 worker: invalid configuration: spec.workers.tools.search.corpusPath: cannot read /c",
      "    log: /r/logs/worker-0.log",
    ]);
    const crash = exitReport("worker-1", 1, ['{"level":"error","message":"boom","at":3}', "x"], "/l", "then");
    expect(crash.split("\n").slice(1, 3)).to.deep.equal(["    | error boom at=3", "    | x"]);
    expect(exitReport("engine-0", 137, [], "/l", "starting it again (1 of 5)")).to.match(
      /^l0 local: engine-0 exited with code 137; starting it again \(1 of 5\)/,
    );
    expect(readableLine("x".repeat(500)).length).to.equal(300);
  });

  it("reads the warm start's progress from the learner's records in the trainer log", () => {
    const log = [
      '{"message":"learner starting"}',
      '{"component":"learner","message":"supervised warm-start","demonstrations":450,"steps":57}',
      "not json",
      '{"component":"learner","message":"supervised step","step":6,"steps":57,"loss":1.25}',
    ];
    expect(warmProgress(log.slice(0, 2).join("\n"))).to.deep.equal({ step: 0, steps: 57 });
    expect(warmProgress(log.join("\n"))).to.deep.equal({ step: 6, steps: 57, loss: 1.25 });
    expect(warmProgress(log[0]!)).to.equal(undefined);
    expect(warmLine({ step: 6, steps: 57, loss: 1.25 }, 4200)).to.equal(
      "warm start 6/57 | loss 1.250 | elapsed 4s",
    );
  });

  it("picks ports below the kernel's ephemeral range, where no bind(0) of the run can land", () => {
    for (const low of [32768, 49152, 10000]) {
      const [lo, hi] = pickRange(low);
      expect(hi).to.be.below(low);
      expect(lo).to.be.at.least(1024);
      expect(hi - lo).to.be.at.least(4000);
    }
  });
});
