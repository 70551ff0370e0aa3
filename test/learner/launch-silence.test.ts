// The learner's start deadline is a silence deadline: a warm start that keeps logging progress may
// take longer than it, and a learner that starts and then says nothing fails with a clear reason.
// A shell script stands in for `python -m learner` (launchLearner runs `<python> -m learner ...`).
import { expect } from "chai";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchLearner } from "../../images/trainer/learner/client.js";
import { L0Error } from "../../lib/errors.js";

const READY = JSON.stringify({ message: "learner ready", grpc_port: 1, metrics_port: 0 });
const step = (i: number) => JSON.stringify({ message: "supervised step", step: i, steps: 4 });

describe("launchLearner's start deadline", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "l0-launch-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A stand-in learner: prints each line to stderr after `gapS` seconds, then stays up. */
  function standIn(name: string, lines: string[], gapS: number): string {
    const file = join(dir, name);
    const body = lines.map((l) => `sleep ${gapS}; echo '${l}' >&2`).join("\n");
    writeFileSync(file, `#!/bin/sh\n${body}\nexec sleep 60\n`);
    chmodSync(file, 0o755);
    return file;
  }

  it("waits through a warm start longer than the deadline while it keeps logging", async () => {
    // Four gaps of 1 s (4 s in all) against a 2.5 s deadline: only re-arming on each line passes.
    const python = standIn("slow-warm-start", [step(1), step(2), step(3), READY], 1);
    const learner = await launchLearner({ flags: { tokenFile: "x" }, python, readyTimeoutMs: 2500 });
    try {
      expect(learner.address).to.equal("127.0.0.1:1");
    } finally {
      await learner.stop(100);
    }
  });

  it("fails a learner that goes silent, naming the deadline and its last words", async () => {
    const python = standIn("silent", [step(1)], 0);
    const err = await launchLearner({ flags: { tokenFile: "x" }, python, readyTimeoutMs: 1000 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(L0Error);
    expect((err as L0Error).kind).to.equal("Unavailable");
    expect((err as Error).message).to.match(/no "learner ready" and no log line for 1000 ms/);
    expect((err as Error).message).to.include('"supervised step"');
  });
});
