// Resume is restart-safe: a run stopped with Ctrl-C and started again three times in a row
// resumes each time from its checkpoint (fresh ports picked on every start, none taken by a
// bind(0) of the run's own processes) and finishes with every step recorded once.
import { expect } from "chai";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseHistory } from "../../local/summary.js";
import { shortRun, startLocal } from "./run-local.js";

const STEPS = 4;

describe("l0 local: resume three times in a row", function () {
  this.timeout(400_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "l0-resume-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("stops on Ctrl-C and resumes, three times, then completes", async () => {
    const file = join(dir, "run.yaml");
    const runDir = join(dir, "run");
    writeFileSync(file, shortRun("resume-test", STEPS)); // no warm start: fast
    const steps = () => {
      const p = join(runDir, "checkpoints", "history.jsonl");
      return existsSync(p) ? parseHistory(readFileSync(p, "utf8")).filter((r) => r.kind === "step") : [];
    };
    const env = { L0_LEARNER_SEED: "1", L0_TRAINER_LEASE_TIMEOUT: "3s" };
    for (let round = 0; round < 4; round++) {
      const run = startLocal(file, runDir, { env });
      if (round < 3) {
        // Wait for one more step than there was, then Ctrl-C.
        const before = steps().length;
        const deadline = Date.now() + 120_000;
        while (steps().length <= before) {
          if (Date.now() > deadline) throw new Error(`round ${round}: no new step\n${run.out()}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        run.proc.kill("SIGINT");
      }
      expect(await run.done).to.equal(0, `round ${round}\n${run.out()}`);
      if (round > 0) expect(run.out()).to.contain("resuming from its checkpoint");
      expect(run.out()).not.to.contain("EADDRINUSE");
    }
    expect(steps().map((r) => r.step)).to.include.members([1, 2, 3, 4]);
    const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as { steps: number };
    expect(summary.steps).to.equal(STEPS);
  });
});
