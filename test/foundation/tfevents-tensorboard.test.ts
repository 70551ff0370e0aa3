// The trainer's event files read by TensorBoard itself: its Python loader (EventAccumulator, what
// `--load_fast=false` serves) and its Rust data server (`--load_fast=true`, the default where the
// binary is installed), over a run whose trainer restarted from a checkpoint. Needs a Python with
// the `tensorboard` package: L0_TENSORBOARD_PYTHON names it (else python3 is tried); skipped
// without one, so the format tests (tfevents.test.ts) stand alone. E.g.
//   python3 -m venv /tmp/tb && /tmp/tb/bin/pip install tensorboard
//   L0_TENSORBOARD_PYTHON=/tmp/tb/bin/python npx mocha test/foundation/tfevents-tensorboard.test.ts
import { expect } from "chai";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Counter, Registry } from "prom-client";
import { TensorBoardLog } from "../../images/trainer/trainer/tensorboard.js";
import { silentLogger } from "../../lib/log.js";
import { freePorts } from "../../local/supervise.js";

const PYTHON = process.env.L0_TENSORBOARD_PYTHON ?? "python3";
const hasTensorBoard = () => spawnSync(PYTHON, ["-c", "import tensorboard"]).status === 0;

/** A run whose trainer was killed after step 4 and resumed from its step-2 checkpoint. */
function writeRun(dir: string): void {
  const errors = new Counter({ name: "e_total", help: "e", registers: [new Registry()] });
  const attempt = (t: number, f: (tb: TensorBoardLog) => void) => {
    const tb = new TensorBoardLog({ dir, logger: silentLogger(), errors, clock: () => t, host: "trainer-0" });
    f(tb);
    tb.close();
  };
  const step = (tb: TensorBoardLog, t: number, s: number, loss: number) =>
    tb.record({ kind: "step", step: s, policyVersion: s, unixMs: t + s * 1000, loss, rewardMean: s / 10 });
  const T1 = 1_700_000_000_000;
  const T2 = 1_700_000_100_000;
  attempt(T1, (tb) => {
    tb.record({ kind: "eval", step: 0, policyVersion: 0, unixMs: T1, accuracy: 0.25, f1: 0.5 });
    for (const s of [1, 2, 3, 4]) step(tb, T1, s, 1);
  });
  attempt(T2, (tb) => {
    for (const s of [3, 4, 5]) step(tb, T2, s, 2);
    tb.record({ kind: "eval", step: 5, policyVersion: 5, unixMs: T2 + 6000, accuracy: 0.75, f1: 0.5 });
  });
}

const WANT = {
  "train/loss": [
    [1, 1],
    [2, 1],
    [3, 2],
    [4, 2],
    [5, 2],
  ],
  "rollout/reward_mean": [1, 2, 3, 4, 5].map((s) => [s, Math.fround(s / 10)]),
  "eval/accuracy": [
    [0, 0.25],
    [5, 0.75],
  ],
};

const LOAD = `
import json, sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0})
acc.Reload()
print(json.dumps({"fileVersion": acc.file_version,
                  "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}}))
`;

describe("TensorBoard event files: read by TensorBoard", function () {
  this.timeout(120_000);
  before(function () {
    if (!hasTensorBoard()) this.skip(); // no TensorBoard here: see the header
  });

  it("its Python loader reads every tag, dropping the steps the restarted trainer repeated", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-tb-"));
    writeRun(dir);
    const r = spawnSync(PYTHON, ["-c", LOAD, dir], { encoding: "utf8" });
    expect(r.status, r.stderr).to.equal(0);
    const got = JSON.parse(r.stdout) as { fileVersion: number; scalars: Record<string, number[][]> };
    expect(got.fileVersion).to.equal(2);
    for (const [tag, points] of Object.entries(WANT)) expect(got.scalars[tag], tag).to.deep.equal(points);
  });

  it("its Rust data server serves the same curves", async () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-tb-"));
    writeRun(dir);
    const [port] = await freePorts(1);
    let server: ChildProcess | undefined;
    try {
      server = spawn(
        PYTHON,
        [
          "-m",
          "tensorboard.main",
          "--logdir",
          dir,
          "--load_fast=true",
          "--host",
          "127.0.0.1",
          "--port",
          `${port}`,
        ],
        { stdio: "ignore" },
      );
      const exited = new Promise<never>((_, reject) =>
        server!.on("exit", (code) => reject(new Error(`tensorboard exited with ${code}`))),
      );
      for (const [tag, points] of Object.entries(WANT)) {
        const url = `http://127.0.0.1:${port}/data/plugin/scalars/scalars?run=.&tag=${encodeURIComponent(tag)}`;
        // Served as [wall_time, step, value]; polled until the server has loaded every point.
        const served = await Promise.race([exited, poll(url, (rows) => rows.length >= points.length)]);
        expect(
          served.map(([, step, value]) => [step, value]),
          tag,
        ).to.deep.equal(points);
      }
    } finally {
      server?.kill();
    }
  });
});

async function poll(url: string, done: (rows: number[][]) => boolean): Promise<number[][]> {
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(url);
      if (res.ok) {
        const rows = (await res.json()) as number[][];
        if (done(rows) || i > 120) return rows; // ~30 s
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
