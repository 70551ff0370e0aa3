// bwrapArgs is the sandbox's whole shape in one pure function: its output is pinned here as a
// snapshot, and every invalid spec must fail closed with the field named.
import { expect } from "chai";
import { bwrapArgs } from "../../images/worker/sandbox/bwrap.js";
import { type SandboxSpec, specViolations } from "../../images/worker/sandbox/spec.js";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseProcCgroup, planCgroups, sweepStaleCgroups } from "../../images/worker/sandbox/cgroup.js";

const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({
  mode: "strict",
  bwrap: "/usr/bin/bwrap",
  setpriv: "/usr/bin/setpriv",
  python: "/usr/bin/python3",
  kernelPath: "/app/images/worker/kernel/kernel.py",
  roBinds: ["/etc/alternatives"],
  limits: {
    cpuSeconds: 60,
    memoryBytes: 1 << 30,
    fileSizeBytes: 64 << 20,
    openFiles: 256,
    processes: 64,
    workdirBytes: 256 << 20,
  },
  uid: 100_001,
  gid: 100_001,
  hostUid: 0,
  cgroupProcs: ["/sys/fs/cgroup/pids/k1/cgroup.procs", "/sys/fs/cgroup/memory/k1/cgroup.procs"],
  seccomp: "/tmp/l0-kernel-7-Ab3dEf/seccomp.bpf",
  nproc: 64,
  ...over,
});

const SNAPSHOT = [
  "/bin/sh -c",
  "echo 1000 > /proc/self/oom_score_adj || exit 98;",
  'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"',
  "l0-kernel /sys/fs/cgroup/pids/k1/cgroup.procs /sys/fs/cgroup/memory/k1/cgroup.procs --",
  "/usr/bin/setpriv --reuid=100001 --regid=100001 --clear-groups --no-new-privs --bounding-set=-all --inh-caps=-all",
  "/usr/bin/bwrap --unshare-all --unshare-user --disable-userns --die-with-parent --new-session --clearenv",
  "--cap-drop ALL --hostname sandbox --seccomp 3",
  "--setenv PATH /usr/local/bin:/usr/bin:/bin --setenv HOME /tmp --setenv TMPDIR /tmp --setenv LANG C.UTF-8",
  "--setenv PYTHONDONTWRITEBYTECODE 1 --setenv PYTHONUNBUFFERED 1 --setenv OPENBLAS_NUM_THREADS 1",
  "--setenv OMP_NUM_THREADS 1 --setenv MPLBACKEND Agg --setenv MALLOC_ARENA_MAX 2",
  "--ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin",
  "--ro-bind-try /etc/alternatives /etc/alternatives --proc /proc --dev /dev",
  "--size 67108864 --tmpfs /dev/shm --size 268435456 --tmpfs /tmp --size 8388608 --tmpfs /run/l0",
  "--ro-bind /app/images/worker/kernel/kernel.py /opt/l0/kernel.py",
  "--remount-ro /dev --remount-ro /proc --remount-ro / --chdir /tmp",
  "-- /usr/bin/python3 -I -B /opt/l0/kernel.py",
  "--as 1073741824 --cpu 60 --fsize 67108864 --nofile 256 --nproc 64",
].join(" ");

describe("worker sandbox: bwrapArgs", () => {
  it("matches the snapshot for a strict spec run by a root worker", () => {
    const { file, args } = bwrapArgs(spec());
    expect([file, ...args].join(" ")).to.equal(SNAPSHOT);
  });

  it("keeps the isolation flags in every mode", () => {
    for (const s of [
      spec(),
      spec({ mode: "weak", cgroupProcs: [] }),
      spec({ hostUid: 100_001, cgroupProcs: [], mode: "weak" }),
    ]) {
      const { args } = bwrapArgs(s);
      for (const flag of [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--remount-ro",
      ])
        expect(args, flag).to.include(flag);
      expect(args.join(" ")).to.not.match(/--bind \/ |--ro-bind \/ \//);
    }
  });

  it("skips setpriv when the worker is already the kernel's non-root uid, but not the prelude", () => {
    const { file, args } = bwrapArgs(spec({ hostUid: 100_001, mode: "weak", cgroupProcs: [] }));
    // Weak mode still raises the kernel's oom_score_adj before bwrap.
    expect([file, ...args.slice(0, 4)].join(" ")).to.match(/^\/bin\/sh -c echo 1000 > .* l0-kernel --$/);
    expect(args[4]).to.equal("/usr/bin/bwrap");
    expect(args).to.not.include("--clear-groups");
  });

  it("leaves out --seccomp only where the spec has no filter (weak mode without libseccomp)", () => {
    expect(bwrapArgs(spec({ mode: "weak", cgroupProcs: [], seccomp: null })).args).to.not.include(
      "--seccomp",
    );
  });

  const bad: [string, Partial<SandboxSpec>, RegExp][] = [
    ["strict without a pids cgroup", { cgroupProcs: [] }, /cgroupProcs: strict mode needs a pids cgroup/],
    ["strict without a seccomp filter", { seccomp: null }, /seccomp: strict mode needs the seccomp filter/],
    ["a relative seccomp path", { seccomp: "f.bpf" }, /seccomp: must be an absolute path/],
    ["root uid", { uid: 0 }, /uid: must be a non-root uid/],
    ["binding /", { roBinds: ["/"] }, /roBinds\[0\]: must not expose \//],
    ["binding /etc", { roBinds: ["/etc/"] }, /roBinds\[0\]: must not expose \/etc/],
    ["a relative path", { python: "python3" }, /python: must be an absolute path/],
    ["a path with ..", { roBinds: ["/usr/../etc"] }, /roBinds\[0\]: must be an absolute path/],
    ["zero memory", { limits: { ...spec().limits, memoryBytes: 0 } }, /limits.memoryBytes/],
    ["fractional cpu", { limits: { ...spec().limits, cpuSeconds: 1.5 } }, /limits.cpuSeconds/],
    ["a cgroup file elsewhere", { cgroupProcs: ["/tmp/cgroup.procs"] }, /cgroupProcs\[0\]/],
    ["a non-root worker asking for another uid", { hostUid: 1000 }, /cannot switch to uid/],
    [
      "an RLIMIT_NPROC below the process limit",
      { nproc: 8 },
      /nproc: must be an integer >= limits.processes/,
    ],
  ];
  for (const [name, over, re] of bad) {
    it(`fails closed on ${name}`, () => {
      expect(() => bwrapArgs(spec(over))).to.throw(re);
      expect(specViolations(spec(over)).length).to.be.greaterThan(0);
    });
  }
});

describe("worker sandbox: cgroup detection", () => {
  const files = (m: Record<string, string>) => (p: string) => m[p] ?? null;

  it("parses /proc/self/cgroup for v1 and v2 lines", () => {
    const m = parseProcCgroup("4:memory:/a/b\n8:pids:/\n2:cpu,cpuacct:/c\n0::/u\n");
    expect(m.get("memory")).to.equal("/a/b");
    expect(m.get("cpuacct")).to.equal("/c");
    expect(m.get("")).to.equal("/u");
  });

  it("finds v1 pids and memory under our own cgroups", () => {
    const l = planCgroups({
      root: "/sys/fs/cgroup",
      procSelfCgroup: "8:pids:/\n4:memory:/process_api/x\n",
      read: files({ "/sys/fs/cgroup/pids/cgroup.procs": "1\n", "/sys/fs/cgroup/memory/cgroup.procs": "1\n" }),
      writable: () => true,
    });
    expect(l).to.deep.include({
      version: "v1",
      pidsParent: "/sys/fs/cgroup/pids/",
      memoryParent: "/sys/fs/cgroup/memory/process_api/x",
    });
  });

  it("uses v2 when the unified hierarchy is mounted at the root and delegates pids", () => {
    const l = planCgroups({
      root: "/sys/fs/cgroup",
      procSelfCgroup: "0::/pod/worker\n",
      read: files({
        "/sys/fs/cgroup/cgroup.controllers": "cpu memory pids",
        "/sys/fs/cgroup/pod/worker/cgroup.subtree_control": "memory pids",
      }),
      writable: () => true,
    });
    expect(l).to.deep.include({
      version: "v2",
      pidsParent: "/sys/fs/cgroup/pod/worker",
      memoryParent: "/sys/fs/cgroup/pod/worker",
    });
  });

  it("reports why a controller is unavailable", () => {
    const l = planCgroups({
      root: "/sys/fs/cgroup",
      procSelfCgroup: "0::/\n",
      read: files({
        "/sys/fs/cgroup/cgroup.controllers": "cpu memory pids",
        "/sys/fs/cgroup/cgroup.subtree_control": "cpu",
      }),
      writable: () => false,
    });
    expect(l.pidsParent).to.equal(null);
    expect(l.notes.join(" ")).to.match(/pids is not enabled/);
  });

  it("reports no cgroups when nothing is writable", () => {
    const l = planCgroups({
      root: "/sys/fs/cgroup",
      procSelfCgroup: "8:pids:/\n",
      read: files({ "/sys/fs/cgroup/pids/cgroup.procs": "" }),
      writable: () => false,
    });
    expect(l.version).to.equal("none");
    expect(l.notes.join(" ")).to.match(/not writable/);
  });

  it("sweeps the kernel cgroups of dead workers of its own pid namespace, and nothing else", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-cg-"));
    try {
      const names = [
        "l0-kernel-999999n7-1", // a dead worker of this namespace: swept
        "l0-test-999999n7-ab-2", // likewise
        "l0-kernel-999999n8-1", // pid 999999 of another namespace: means nothing here
        "l0-kernel-999999-1", // untagged (older workers, tests): never judged
        `l0-kernel-${process.pid}n7-1`, // ours
        "l0-kernel-1n7-1", // alive
        "other",
      ];
      for (const n of names) mkdirSync(join(dir, n));
      mkdirSync(join(dir, "l0-kernel-999998n7-1", "busy"), { recursive: true }); // not empty: kept
      const removed = sweepStaleCgroups(
        { version: "v1", pidsParent: dir, memoryParent: null, notes: [] },
        (pid) => pid !== 999999 && pid !== 999998,
        "7",
      );
      expect(removed.map((p) => p.slice(dir.length + 1)).sort()).to.deep.equal([
        "l0-kernel-999999n7-1",
        "l0-test-999999n7-ab-2",
      ]);
      expect(readdirSync(dir).sort()).to.deep.equal(
        [
          "l0-kernel-999999n8-1",
          "l0-kernel-999999-1",
          `l0-kernel-${process.pid}n7-1`,
          "l0-kernel-1n7-1",
          "l0-kernel-999998n7-1",
          "other",
        ].sort(),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
