// `l0 local` with spec.inference, end to end with the real programs: the trainer exports every
// policy version and serves it from its weight service; two inference replicas, each the learner's
// CPU engine alone (`--role inference`) beside a real `l0 sidecar` (local adapter), pull, verify and
// load it; the trainer leases the next step only once both serve it; workers sample from them.
// The trainer is SIGKILLed mid-run and its export directory and published-version record are lost
// (as emptyDirs are with a pod): restarted from its checkpoint, it still never reuses a version
// number the engines hold (they would not load it again), learning it from their reports. Then an
// engine is SIGKILLed: l0 local starts it again and its sidecar loads the served weights into it.
import { expect } from "chai";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseHistory } from "../../local/summary.js";
import { headDemos, shortRun, startLocal } from "./run-local.js";

const STEPS = 6;

const manifest = (dir: string): string =>
  shortRun("inference-test", STEPS, {
    learningRate: "1.0e-3",
    extra: "  inference: { replicas: 2 }\n",
    warmStart: headDemos(dir, 8),
  });

const records = (file: string, message: string): Record<string, unknown>[] =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.includes(`"message": "${message}"`) || l.includes(`"message":"${message}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const sha256 = (file: string): string => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("l0 local with separate inference engines", function () {
  this.timeout(180_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "l0-inference-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("syncs every policy version to both engines before the next step, and trains on their samples", async () => {
    const file = join(dir, "run.yaml");
    const runDir = join(dir, "run");
    writeFileSync(file, manifest(dir));
    const run = startLocal(file, runDir, { env: { L0_LEARNER_SEED: "1" } });
    const history = () => {
      const p = join(runDir, "checkpoints", "history.jsonl");
      return existsSync(p) ? parseHistory(readFileSync(p, "utf8")) : [];
    };
    const pids = () => JSON.parse(readFileSync(join(runDir, "pids.json"), "utf8")) as Record<string, number>;
    const reach = async (step: number) => {
      const deadline = Date.now() + 120_000;
      while (!history().some((r) => r.kind === "step" && r.step >= step)) {
        if (Date.now() > deadline) throw new Error(`no step ${step} in time\n${run.out()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await reach(2);
    process.kill(pids().trainer!, "SIGKILL");
    // In a cluster both directories are emptyDirs by default and go with the pod: the restarted
    // trainer must learn from the running engines which versions they hold.
    rmSync(join(runDir, "weights-export"), { recursive: true, force: true });
    rmSync(join(runDir, "checkpoints", "published-version"), { force: true });
    // Then an engine dies, as an engine container may: it is started again, and its sidecar
    // loads the served version into it (or the next version waits for it to come up).
    await reach(4);
    process.kill(-pids()["engine-0"]!, "SIGKILL");
    expect(await run.done).to.equal(0, run.out());
    expect(run.out()).to.contain("2 inference engine(s) with weight sync");
    expect(run.out()).to.match(/the trainer exited with code \d+; restarting it/);
    expect(run.out()).to.match(/engine-0 exited with code \d+; starting it again/);

    const h = history();
    const steps = h.filter((r) => r.kind === "step");
    expect(steps.map((r) => r.step)).to.include.members([1, 2, 3, 4, 5, 6]);
    for (const s of steps) expect(s.samples, `step ${s.step}`).to.be.greaterThan(0);
    const last = steps.at(-1)!.policyVersion;

    // The trainer waited for both engines after the warm start and after every step, in both
    // attempts, and never published a version number twice.
    const logs = join(runDir, "logs");
    const published = records(join(logs, "trainer.log"), "engines serve the new policy").map(
      (r) => r.policyVersion as number,
    );
    expect(published.length).to.be.at.least(STEPS + 2); // warm start of each attempt + every step
    for (let k = 1; k < published.length; k++)
      expect(published[k], `published ${published.join(",")}`).to.be.greaterThan(published[k - 1]!);
    expect(published.at(-1)).to.equal(last);
    // Consecutive repeats dropped: engine-0 may have had its served version loaded once more
    // after its restart.
    const runs = (xs: unknown[]) => xs.filter((x, k) => k === 0 || x !== xs[k - 1]);
    for (const i of [0, 1]) {
      // Each sidecar loaded each published version once; each engine loaded exactly those.
      const served = records(join(logs, `sidecar-${i}.log`), "engine serves weights").map((r) => r.version);
      const loaded = records(join(logs, `engine-${i}.log`), "weights loaded").map((r) => r.version);
      if (i === 1) {
        expect(served, `sidecar-${i}`).to.deep.equal(published);
        expect(loaded, `engine-${i}`).to.deep.equal(published);
      } else {
        expect(runs(served), `sidecar-${i}`).to.deep.equal(published);
        expect(runs(loaded), `engine-${i}`).to.deep.equal(published);
        expect(records(join(logs, `engine-${i}.log`), "learner ready")).to.have.length(2);
      }
      // What the engine loaded last is, byte for byte, what the learner exported.
      const root = join(runDir, `inference-${i}`, "weights");
      expect(basename(readlinkSync(join(root, "current")))).to.equal(String(last));
      const exported = join(runDir, "weights-export", String(last));
      const shards = readdirSync(exported).filter((f) => f.endsWith(".safetensors"));
      expect(shards.length).to.be.greaterThan(0);
      for (const s of shards)
        expect(sha256(join(root, "versions", String(last), s)), s).to.equal(sha256(join(exported, s)));
    }
    expect(existsSync(join(runDir, "summary.json"))).to.equal(true);
  });
});
