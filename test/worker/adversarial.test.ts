// The adversarial suite (adversarial/suite.ts) in both sandbox modes, each in a pid namespace of
// its own with tini as PID 1, like the worker image in a pod: strict (root, per-kernel uids and
// cgroups) and weak (uid 65532, no capabilities, no cgroups: the mode the operator gives pods).
// Each run has a secret in its environment and an inherited descriptor open on it, which no
// cell may see. The suite's own output is shown as it runs.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { skipUnlessReadableBy } from "../fixtures/uid.js";

const ROOT = join(import.meta.dirname, "..", "..");
const SUITE = "test/worker/adversarial/suite.ts";
const have = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

/** The uid the operator runs worker pods as (operator/workerpool/build.ts WORKER_UID). */
const POD_UID = 65532;

function runSuite(mode: "strict" | "weak"): Promise<number | null> {
  const secret = `l0-adv-secret-${mode}-${Math.random().toString(36).slice(2)}`;
  const dir = mkdtempSync(join(tmpdir(), "l0-adv-"));
  writeFileSync(join(dir, "token"), secret, { mode: 0o644 });
  const fd = openSync(join(dir, "token"), "r");
  const drop =
    mode === "weak"
      ? [
          "setpriv",
          `--reuid=${POD_UID}`,
          `--regid=${POD_UID}`,
          "--clear-groups",
          "--bounding-set=-all",
          "--inh-caps=-all",
          "--no-new-privs",
          "--",
        ]
      : [];
  const node = [
    process.execPath,
    "--import",
    "tsx",
    "node_modules/mocha/bin/mocha.js",
    "--no-config",
    "--timeout",
    "120000",
    SUITE,
  ];
  const child = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--", "tini", "--", ...drop, ...node], {
    cwd: ROOT,
    // Descriptor 40: high enough that Node does not mark it close-on-exec itself.
    stdio: ["ignore", "pipe", "pipe", ...Array<"ignore">(37).fill("ignore"), fd],
    env: { PATH: process.env.PATH, HOME: "/tmp", L0_TEST_SECRET: secret, L0_TEST_OWN_PIDNS: "1" },
  });
  closeSync(fd);
  child.stdout!.pipe(process.stdout, { end: false });
  child.stderr!.pipe(process.stderr, { end: false });
  return new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

describe("worker sandbox: the adversarial suite in both modes", function () {
  this.timeout(20 * 60_000);

  for (const mode of ["strict", "weak"] as const) {
    it(`${mode} mode: every hostile cell contained, nothing outlives its episode, the worker keeps serving`, async function () {
      if (process.getuid?.() !== 0) this.skip(); // making the pod-like namespaces needs root
      expect(have("tini"), "tini is missing: run scripts/setup.sh").to.equal(true);
      expect(have("unshare"), "unshare (util-linux) is missing").to.equal(true);
      if (mode === "weak") skipUnlessReadableBy(this, POD_UID);
      expect(await runSuite(mode), `the ${mode}-mode suite failed (its output is above)`).to.equal(0);
    });
  }
});
