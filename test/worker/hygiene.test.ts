// What the worker process keeps to itself and cleans up: descriptors it inherited are closed
// before any kernel can inherit them, its private directory goes with it (and is swept after a
// crash), a dead worker's cgroups are emptied and removed, and RLIMIT_NPROC binds per kernel.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { detectCgroups, ownerTag, sweepStaleCgroups } from "../../images/worker/sandbox/cgroup.js";
import { inheritableFds, sweepStaleWorkerDirs } from "../../images/worker/sandbox/hygiene.js";
import { nprocFor, perUsernsNproc } from "../../images/worker/sandbox/host.js";
import { TEST_LIMITS } from "./fixtures/sandbox.js";

const ROOT = join(import.meta.dirname, "..", "..");
/**
 * Runs TypeScript in a fresh Node (tsx) with `extra` as descriptor 40 (Node marks the lowest few
 * inherited descriptors close-on-exec itself, not the others); returns its stdout.
 */
function node(code: string, extra?: number): string {
  const stdio: ("ignore" | "pipe" | number)[] = ["ignore", "pipe", "pipe"];
  if (extra !== undefined) stdio.push(...Array<"ignore">(37).fill("ignore"), extra);
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    cwd: ROOT,
    stdio,
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`node failed: ${r.stderr}`);
  return r.stdout;
}

describe("worker hygiene: descriptors", function () {
  this.timeout(60_000);

  it("finds the descriptors a child would inherit: above 2 and without O_CLOEXEC", () => {
    const info = new Map([
      [0, "pos:\t0\nflags:\t02\nmnt_id:\t1\n"],
      [3, "pos:\t0\nflags:\t02000002\n"], // Node's own: close-on-exec
      [5, "pos:\t0\nflags:\t0100000\n"], // left open by whoever started us
      [9, "pos:\t0\nflags:\t02\n"],
      [7, "garbage"],
    ]);
    expect(inheritableFds(info)).to.deep.equal([5, 9]);
  });

  it("closes what the worker inherited, so a kernel cannot inherit it", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-inh-"));
    writeFileSync(join(dir, "token"), "secret");
    const fd = openSync(join(dir, "token"), "r");
    try {
      const out = node(
        `import { closeInheritedDescriptors } from "./images/worker/sandbox/hygiene.ts";\n` +
          `import { readlinkSync, readdirSync } from "node:fs";\n` +
          `const before = readlinkSync("/proc/self/fd/40");\n` +
          `const closed = closeInheritedDescriptors();\n` +
          `console.log(JSON.stringify({ before, closed, after: readdirSync("/proc/self/fd").includes("40") }));`,
        fd,
      );
      const r = JSON.parse(out) as { before: string; closed: number[]; after: boolean };
      expect(r.before).to.equal(join(dir, "token"));
      expect(r.closed).to.include(40);
      expect(r.after).to.equal(false);
    } finally {
      closeSync(fd);
    }
  });
});

describe("worker hygiene: the private directory", function () {
  this.timeout(60_000);

  it("is removed when the worker exits", () => {
    const dir = node(
      `import { workerDir, stageKernelScript } from "./images/worker/sandbox/hygiene.ts";\n` +
        `import { kernelScriptPath } from "./images/worker/sandbox/host.ts";\n` +
        `stageKernelScript(kernelScriptPath()); console.log(workerDir());`,
    ).trim();
    expect(dir).to.match(/\/l0-kernel-\d+n\d+-[A-Za-z0-9]{6}$/);
    expect(existsSync(dir)).to.equal(false);
  });

  it("of a dead worker of this pid namespace is swept; live, foreign and unrelated ones are kept", () => {
    const root = mkdtempSync(join(tmpdir(), "l0-sweep-"));
    const keep = [
      "l0-kernel-222n5-XyZ789",
      "l0-kernel-111n6-AbC123",
      "l0-kernel-111-AbC123",
      "l0-kernel-Qq1234",
      "other",
    ];
    for (const d of ["l0-kernel-111n5-AbC123", ...keep]) mkdirSync(join(root, d, "sub"), { recursive: true });
    const removed = sweepStaleWorkerDirs(root, (pid) => pid === 222, "5");
    expect(removed).to.deep.equal([join(root, "l0-kernel-111n5-AbC123")]);
    for (const d of keep) expect(existsSync(join(root, d)), d).to.equal(true);
  });
});

describe("worker hygiene: a dead worker's cgroups", function () {
  this.timeout(30_000);
  const layout = detectCgroups();

  it("are emptied (their processes killed) and removed", async function () {
    if (!layout.pidsParent) this.skip(); // no writable cgroup here: weak mode has none to sweep
    const dead = 2 ** 22 + 12_345; // above pid_max's default: no such worker
    const dir = join(layout.pidsParent!, `l0-kernel-${ownerTag(dead)}-1`);
    mkdirSync(dir);
    const survivor = spawn("sleep", ["600"], { stdio: "ignore" });
    writeFileSync(join(dir, "cgroup.procs"), String(survivor.pid));
    const exited = new Promise<string | null>((r) => survivor.on("exit", (_c, sig) => r(sig)));
    try {
      const removed = sweepStaleCgroups({ ...layout, memoryParent: null }, (pid) => pid !== dead);
      expect(removed).to.deep.equal([dir]);
      expect(await exited).to.equal("SIGKILL");
    } finally {
      survivor.kill("SIGKILL");
      await exited;
      if (existsSync(dir)) rmdirSync(dir);
    }
  });
});

describe("worker hygiene: RLIMIT_NPROC per kernel", () => {
  it("counts per user namespace from Linux 5.14 on", () => {
    const table: [string, boolean][] = [
      ["6.18.44-fc-v1252", true],
      ["5.15.0-91-generic", true],
      ["5.14.0-362.el9.x86_64", true],
      ["5.10.0-28-amd64", false],
      ["4.19.0", false],
      ["weird", false],
    ];
    for (const [release, want] of table) expect(perUsernsNproc(release), release).to.equal(want);
  });

  it("is the kernel's process limit unless kernels share a uid on an old Linux", () => {
    const s = { limits: TEST_LIMITS, maxKernels: 10 };
    expect(nprocFor(s, 0, "4.19.0")).to.equal(TEST_LIMITS.processes);
    expect(nprocFor(s, 65532, "6.1.0")).to.equal(TEST_LIMITS.processes);
    expect(nprocFor(s, 65532, "5.10.0")).to.equal(TEST_LIMITS.processes * 10 + 256);
  });
});
