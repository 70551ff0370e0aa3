// `l0 local` with spec.trainer.nodes: 2: two trainer "pods" on this machine, the first leading
// (hub, loop, learner rank 0), the second running learner rank 1 (torch.distributed, gloo).
// SIGKILLing rank 1 mid-run fails the attempt (rank 0's next collective breaks, or the gang goes
// with it) well within a minute, and the restarted gang resumes from the checkpoint to the end.
import { expect } from "chai";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseHistory } from "../../local/summary.js";
import { shortRun, startLocal } from "./run-local.js";

const history = (runDir: string) => {
  const p = join(runDir, "checkpoints", "history.jsonl");
  return existsSync(p) ? parseHistory(readFileSync(p, "utf8")) : [];
};

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Learner processes of the run (python -m learner --run-config <runDir>/run.json) with their RANK. */
function learnerRanks(runDir: string): { pid: number; rank: string }[] {
  const out: { pid: number; rank: string }[] = [];
  for (const d of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
      if (!cmd.includes("-m\0learner\0") || !cmd.includes(runDir)) continue;
      const env = readFileSync(`/proc/${d}/environ`, "utf8").split("\0");
      out.push({ pid: Number(d), rank: env.find((e) => e.startsWith("RANK="))?.slice(5) ?? "" });
    } catch {
      // gone
    }
  }
  return out;
}

describe("l0 local with two learner ranks (spec.trainer.nodes: 2)", function () {
  this.timeout(300_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "l0-ranks-"))));
  after(() => {
    for (const { pid } of learnerRanks(dir))
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    rmSync(dir, { recursive: true, force: true });
  });

  it("trains with two ranks, fails the attempt when one is killed, and resumes to the end", async () => {
    const file = join(dir, "run.yaml");
    const runDir = join(dir, "run");
    writeFileSync(file, shortRun("ranks-test", 5, { extra: "  trainer: { nodes: 2, gpusPerNode: 0 }" }));
    const run = startLocal(file, runDir, { env: { L0_LEARNER_SEED: "1" } });
    await until("step 2", () => history(runDir).some((r) => r.kind === "step" && r.step >= 2), 180_000);
    const ranks = learnerRanks(runDir);
    expect(ranks.map((r) => r.rank).sort()).to.deep.equal(["0", "1"]);
    const leader = readFileSync(join(runDir, "logs", "trainer.log"), "utf8");
    expect(leader).to.match(/"message":"learner ready".*"world_size":2/);
    process.kill(ranks.find((r) => r.rank === "1")!.pid, "SIGKILL");
    // Waits on the failure itself; the bound is the "within a minute" (a rank hanging in a
    // collective would wait out --dist-timeout-s, 1800 s, instead).
    await until("the attempt to fail", () => /the trainer exited with code/.test(run.out()), 60_000);
    expect(await run.done).to.equal(0, run.out());
    expect(run.out()).to.match(/restarting it from the last checkpoint/);
    expect(
      history(runDir)
        .filter((r) => r.kind === "step")
        .map((r) => r.step),
    ).to.include.members([1, 2, 3, 4, 5]);
    expect(readFileSync(join(runDir, "logs", "trainer-1.log"), "utf8")).to.contain("learner rank ready");
  });
});
