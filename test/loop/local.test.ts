// `l0 local` end to end with the real programs: the trainer (real learner, hub, checkpoints) and
// two workers (bwrap kernels), on a shortened run. A worker is SIGKILLed mid-run and the run goes
// on (its leases expire and are retried); Ctrl-C stops everything, leaving no process and a
// resumable checkpoint; the same command then resumes, survives its trainer (hub + learner) being
// SIGKILLed (restarted from the checkpoint) and finishes with every step recorded, in history.jsonl
// and in the TensorBoard event files.
import { expect } from "chai";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseHistory } from "../../local/summary.js";
import { tensorboardView } from "../foundation/tfevents-reader.js";
import { headDemos, shortRun, startLocal } from "./run-local.js";

// Short leases so a killed worker's episodes come back quickly; a seeded learner; a small warm start.
const start = (file: string, runDir: string) =>
  startLocal(file, runDir, {
    env: { L0_TRAINER_LEASE_TIMEOUT: "3s", L0_TRAINER_RETRY_BACKOFF: "200ms", L0_LEARNER_SEED: "1" },
  });

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Pids whose command line mentions `text` (the learner is started with --run-config <runDir>/run.json). */
function processesMentioning(text: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8").includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const history = (runDir: string) => {
  const p = join(runDir, "checkpoints", "history.jsonl");
  return existsSync(p) ? parseHistory(readFileSync(p, "utf8")) : [];
};

/** The trainer's JSON log records, every process of it (restarts append). */
const trainerLog = (runDir: string): Record<string, unknown>[] => {
  const p = join(runDir, "logs", "trainer.log");
  if (!existsSync(p)) return [];
  return readFileSync(p, "utf8")
    .split("\n")
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return []; // not a record (a stack trace), or the line being written
      }
    });
};

describe("l0 local end to end", function () {
  this.timeout(240_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "l0-local-"))));
  after(() => {
    // A failed or timed-out test must not leave the run's processes behind (mocha --exit would
    // orphan them): kill whatever still names the run directory, then remove it.
    for (const pid of processesMentioning(dir)) {
      if (pid === process.pid) continue;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("survives a killed worker, stops cleanly on Ctrl-C, and resumes to the end", async () => {
    const file = join(dir, "run.yaml");
    const runDir = join(dir, "run");
    const extra = "  observability: { tensorboard: { enabled: true } }\n";
    writeFileSync(file, shortRun("loop-test", 6, { warmStart: headDemos(dir, 8), extra }));
    const first = start(file, runDir);
    // The warm start is checkpointed as step 0 at once: a trainer killed right after it is
    // restarted from there and does not warm-start again (counted at the end).
    await until(
      "the step-0 checkpoint",
      () => trainerLog(runDir).some((r) => r.message === "checkpoint saved" && r.step === 0),
      150_000,
    );
    process.kill(
      (JSON.parse(readFileSync(join(runDir, "pids.json"), "utf8")) as Record<string, number>).trainer!,
      "SIGKILL",
    );
    await until("step 1", () => history(runDir).some((r) => r.kind === "step" && r.step >= 1), 150_000);
    const pids = JSON.parse(readFileSync(join(runDir, "pids.json"), "utf8")) as Record<string, number>;
    expect(statSync(join(runDir, "token")).mode & 0o777).to.equal(0o600);
    process.kill(-pids["worker-1"]!, "SIGKILL"); // mid-run, with leases in hand
    await until("step 2", () => history(runDir).some((r) => r.kind === "step" && r.step >= 2), 150_000);
    first.proc.kill("SIGINT");
    expect(await first.done).to.equal(0, first.out());
    expect(first.out()).to.contain("stopped; run the same command again to resume");
    for (const [name, pid] of Object.entries(pids))
      expect(alive(pid), `${name} still running`).to.equal(false);
    expect(processesMentioning(runDir), "a process of the run (the learner?) is left").to.deep.equal([]);
    expect(existsSync(join(runDir, "checkpoints", "latest"))).to.equal(true);
    const saved = readFileSync(join(runDir, "checkpoints", "latest"), "utf8").trim();
    expect(["step-000002", "step-000003", "step-000004"]).to.include(saved);

    const second = start(file, runDir);
    // The trainer (hub and learner) crashes mid-run: l0 local restarts it from the checkpoint,
    // as the operator restarts the trainer Job, and the run still completes every step.
    await until("step 4", () => history(runDir).some((r) => r.kind === "step" && r.step >= 4), 150_000);
    const trainerPid = (JSON.parse(readFileSync(join(runDir, "pids.json"), "utf8")) as Record<string, number>)
      .trainer!;
    process.kill(trainerPid, "SIGKILL");
    expect(await second.done).to.equal(0, second.out());
    expect(second.out()).to.contain("resuming from its checkpoint");
    expect(second.out()).to.match(/the trainer exited with code \d+; restarting it from the last checkpoint/);
    const restarted = JSON.parse(readFileSync(join(runDir, "pids.json"), "utf8")) as Record<string, number>;
    expect(restarted.trainer).to.not.equal(trainerPid);
    const h = history(runDir);
    expect(h.filter((r) => r.kind === "step").map((r) => r.step)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    // The step-2 evaluation may have been cut by the Ctrl-C; the first and the final one are there.
    expect(h.filter((r) => r.kind === "eval").map((r) => r.step)).to.include.members([0, 6]);
    const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as { steps: number };
    expect(summary.steps).to.equal(6);
    expect(readFileSync(join(runDir, "plot.svg"), "utf8")).to.match(/^<svg/);
    expect(trainerLog(runDir).filter((r) => r.message === "checkpoint saved").length).to.be.at.least(3);
    expect(trainerLog(runDir).filter((r) => r.message === "supervised warm-start")).to.have.length(1);
    // TensorBoard: a file per trainer process; with the repeated steps dropped (SessionLog START),
    // one point per step, each the value history.jsonl kept.
    const tbDir = join(runDir, "checkpoints", "tensorboard");
    expect(second.out()).to.contain(`curves: tensorboard --logdir ${tbDir}`);
    expect(readdirSync(tbDir).length).to.be.at.least(2);
    const curves = tensorboardView(tbDir);
    const reward = curves.get("rollout/reward_mean")!;
    expect([...reward.keys()].sort((a, b) => a - b)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    for (const r of h.filter((x) => x.kind === "step"))
      expect(reward.get(r.step)).to.equal(Math.fround(r.rewardMean!));
    expect([...curves.get("eval/accuracy")!.keys()]).to.include.members([0, 6]);
  });
});
