// The kernels' seccomp filter on the real sandbox: every denied syscall fails with the filter's
// errno, and a control kernel without the filter shows the same calls were not failing on their
// own (so the filter, not a missing capability, is what refuses them). Ordinary Python (threads,
// subprocesses, multiprocessing, files in /tmp, sockets on the sandbox's loopback) still works.
import { expect } from "chai";
import { type SandboxHost, kernelScriptPath } from "../../images/worker/sandbox/host.js";
import { KernelPool } from "../../images/worker/sandbox/pool.js";
import { type SeccompRule, seccompRules, seccompScriptPath } from "../../images/worker/sandbox/seccomp.js";
import { constants } from "node:os";
import { silentLogger } from "../../lib/log.js";
import { compileSeccompFilter } from "../../images/worker/sandbox/seccomp.js";
import { AUDIT_ARCH, RET, runSeccomp } from "./fixtures/bpf.js";
import { testHost } from "./fixtures/sandbox.js";

/**
 * One probe per denied syscall: arguments that make the call harmless, and whether a kernel
 * without the filter answers it with something other than the filter's errno on any Linux we
 * run on (false: the call needs a capability the sandbox lacks, so only the rule list pins it).
 */
const PROBES: { label: string; syscall: string; args: string; attributable: boolean }[] = [
  { label: "ptrace", syscall: "ptrace", args: "16, 999999, 0, 0", attributable: true },
  {
    label: "process_vm_readv",
    syscall: "process_vm_readv",
    args: "os.getpid(), 0, 0, 0, 0, 0",
    attributable: true,
  },
  {
    label: "process_vm_writev",
    syscall: "process_vm_writev",
    args: "os.getpid(), 0, 0, 0, 0, 0",
    attributable: true,
  },
  { label: "process_madvise", syscall: "process_madvise", args: "-1, 0, 0, 0, 0", attributable: true },
  { label: "pidfd_getfd", syscall: "pidfd_getfd", args: "-1, 0, 0", attributable: true },
  { label: "kcmp", syscall: "kcmp", args: "os.getpid(), os.getpid(), 0, 0, 0", attributable: true },
  { label: "unshare", syscall: "unshare", args: "0", attributable: true },
  { label: "setns", syscall: "setns", args: "-1, 0", attributable: true },
  { label: "mount", syscall: "mount", args: "0, s('/tmp'), s('tmpfs'), 0, 0", attributable: false },
  { label: "umount2", syscall: "umount2", args: "s('/tmp'), 0", attributable: false },
  { label: "pivot_root", syscall: "pivot_root", args: "s('/tmp'), s('/tmp')", attributable: false },
  { label: "chroot", syscall: "chroot", args: "s('/nonexistent')", attributable: true },
  { label: "mount_setattr", syscall: "mount_setattr", args: "-1, s(''), 0, 0, 0", attributable: true },
  { label: "move_mount", syscall: "move_mount", args: "-1, s(''), -1, s(''), 0", attributable: false },
  { label: "open_tree", syscall: "open_tree", args: "-1, s('/nonexistent'), 0", attributable: true },
  { label: "fsopen", syscall: "fsopen", args: "s('tmpfs'), 0", attributable: false },
  { label: "fsconfig", syscall: "fsconfig", args: "-1, 0, 0, 0, 0", attributable: true },
  { label: "fsmount", syscall: "fsmount", args: "-1, 0, 0", attributable: false },
  { label: "fspick", syscall: "fspick", args: "-1, s(''), 0", attributable: false },
  { label: "io_uring_setup", syscall: "io_uring_setup", args: "0, 0", attributable: true },
  { label: "io_uring_enter", syscall: "io_uring_enter", args: "-1, 0, 0, 0, 0, 0", attributable: true },
  { label: "io_uring_register", syscall: "io_uring_register", args: "-1, 0, 0, 0", attributable: true },
  { label: "bpf", syscall: "bpf", args: "0, 0, 0", attributable: false },
  { label: "perf_event_open", syscall: "perf_event_open", args: "0, 0, -1, -1, 0", attributable: true },
  { label: "userfaultfd", syscall: "userfaultfd", args: "1", attributable: false },
  { label: "keyctl", syscall: "keyctl", args: "0, -3, 0, 0, 0", attributable: true },
  { label: "add_key", syscall: "add_key", args: "0, 0, 0, 0, 0", attributable: true },
  { label: "request_key", syscall: "request_key", args: "0, 0, 0, 0", attributable: true },
  { label: "fanotify_init", syscall: "fanotify_init", args: "0, 0", attributable: false },
  {
    label: "name_to_handle_at",
    syscall: "name_to_handle_at",
    args: "-100, s('/tmp'), 0, 0, 0",
    attributable: true,
  },
  { label: "open_by_handle_at", syscall: "open_by_handle_at", args: "-1, 0, 0", attributable: false },
  { label: "lookup_dcookie", syscall: "lookup_dcookie", args: "0, 0, 0", attributable: false },
  { label: "memfd_create", syscall: "memfd_create", args: "s('x'), 0", attributable: true },
  { label: "memfd_secret", syscall: "memfd_secret", args: "0", attributable: false },
  { label: "move_pages", syscall: "move_pages", args: "0, 0, 0, 0, 0, 0", attributable: true },
  { label: "migrate_pages", syscall: "migrate_pages", args: "0, 0, 0, 0", attributable: false },
  { label: "kexec_load", syscall: "kexec_load", args: "0, 0, 0, 0", attributable: false },
  { label: "kexec_file_load", syscall: "kexec_file_load", args: "-1, -1, 0, 0, 0", attributable: false },
  { label: "reboot", syscall: "reboot", args: "0, 0, 0, 0", attributable: false },
  { label: "init_module", syscall: "init_module", args: "0, 0, s('')", attributable: false },
  { label: "finit_module", syscall: "finit_module", args: "-1, s(''), 0", attributable: false },
  { label: "delete_module", syscall: "delete_module", args: "s('l0nosuch'), 0", attributable: false },
  { label: "clock_settime", syscall: "clock_settime", args: "0, 0", attributable: true },
  { label: "clock_adjtime", syscall: "clock_adjtime", args: "0, 0", attributable: true },
  { label: "settimeofday", syscall: "settimeofday", args: "0, 0", attributable: false },
  { label: "adjtimex", syscall: "adjtimex", args: "buf(512)", attributable: true },
  { label: "swapon", syscall: "swapon", args: "0, 0", attributable: false },
  { label: "swapoff", syscall: "swapoff", args: "0", attributable: false },
  { label: "acct", syscall: "acct", args: "0", attributable: false },
  { label: "quotactl", syscall: "quotactl", args: "0, 0, 0, 0", attributable: false },
  { label: "quotactl_fd", syscall: "quotactl_fd", args: "-1, 0, 0, 0", attributable: true },
  { label: "syslog", syscall: "syslog", args: "10, 0, 0", attributable: false },
  { label: "vhangup", syscall: "vhangup", args: "", attributable: false },
  { label: "iopl", syscall: "iopl", args: "0", attributable: true },
  { label: "ioperm", syscall: "ioperm", args: "0, 0, 0", attributable: true },
  { label: "uselib", syscall: "uselib", args: "0", attributable: false },
  { label: "clone3", syscall: "clone3", args: "0, 0", attributable: true },
  // CLONE_SIGHAND without CLONE_VM is invalid: unfiltered, clone fails with EINVAL and starts nothing.
  ...Object.entries({
    CLONE_NEWNS: 0x20000,
    CLONE_NEWCGROUP: 0x2000000,
    CLONE_NEWUTS: 0x4000000,
    CLONE_NEWIPC: 0x8000000,
    CLONE_NEWUSER: 0x10000000,
    CLONE_NEWPID: 0x20000000,
    CLONE_NEWNET: 0x40000000,
    CLONE_NEWTIME: 0x80,
  }).map(([flag, bit]) => ({
    label: `clone(${flag})`,
    syscall: "clone",
    args: `${bit | 0x800}, 0, 0, 0, 0`,
    attributable: true,
  })),
  {
    label: "socket(AF_NETLINK, NETLINK_NETFILTER)",
    syscall: "socket",
    args: "16, 3, 12",
    attributable: true,
  },
  { label: "socket(AF_ALG)", syscall: "socket", args: "38, 5, 0", attributable: false },
  { label: "socket(AF_PACKET)", syscall: "socket", args: "17, 3, 0", attributable: false },
  { label: "socket(AF_VSOCK)", syscall: "socket", args: "40, 1, 0", attributable: true },
  { label: "socket(family 200)", syscall: "socket", args: "200, 1, 0", attributable: false },
];

/** Python that runs every probe in a process of its own and prints {label: errno name or "ok"}. */
function probeScript(rules: SeccompRule[]): string {
  const nr = new Map(rules.map((r) => [r.syscall, r.nr]));
  const calls = PROBES.filter((p) => (nr.get(p.syscall) ?? -1) >= 0).map(
    (p) => `  ${JSON.stringify(p.label)}: lambda: call(${nr.get(p.syscall)}, ${p.args}),`,
  );
  return [
    "import ctypes, errno, json, os",
    "libc = ctypes.CDLL(None, use_errno=True)",
    "libc.syscall.restype = ctypes.c_long",
    "s = lambda t: ctypes.c_char_p(t.encode())",
    "buf = lambda n: ctypes.create_string_buffer(n)",
    "def call(nr, *args):",
    "  a = [ctypes.c_long(x) if isinstance(x, int) else x for x in args]",
    "  ctypes.set_errno(0)",
    "  r = libc.syscall(ctypes.c_long(nr), *a)",
    "  return 'ok' if r >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))",
    "PROBES = {",
    ...calls,
    "}",
    "print(json.dumps({k: f() for k, f in PROBES.items()}))",
  ].join("\n");
}

const noTool = (): Promise<string> => Promise.resolve("");

async function runProbe(pool: KernelPool, script: string): Promise<Record<string, string>> {
  const k = await pool.acquire();
  try {
    k.init([], null, 100_000);
    const cell = `import subprocess, sys\nr = subprocess.run([sys.executable, '-c', ${JSON.stringify(script)}], capture_output=True, text=True)\nprint(r.stdout or r.stderr)`;
    const r = await k.execute(cell, { timeoutMs: 20_000, onTool: noTool });
    expect(r.outcome, r.error ?? r.detail).to.equal("ok");
    return JSON.parse(r.stdout) as Record<string, string>;
  } finally {
    await pool.discard(k);
  }
}

/** The same host with the filter left out (weak mode: strict refuses to run without it). */
const unfiltered = (host: SandboxHost): SandboxHost => ({
  ...host,
  specFor: (n) => ({ ...host.specFor(n), mode: "weak", seccomp: null }),
});

describe("worker sandbox: seccomp filter", function () {
  this.timeout(120_000);
  const rules = seccompRules("/usr/bin/python3", seccompScriptPath(kernelScriptPath()));
  const host = testHost();
  const filtered = new KernelPool({
    host,
    size: 0,
    logger: silentLogger(),
    namePrefix: `l0-sc-${process.pid}`,
  });
  const control = new KernelPool({
    host: unfiltered(host),
    size: 0,
    logger: silentLogger(),
    namePrefix: `l0-sc0-${process.pid}`,
  });
  after(async () => {
    await filtered.close();
    await control.close();
  });

  it("denies exactly the syscalls probed here (a rule dropped or added shows up)", () => {
    const denied = new Set(rules.map((r) => r.syscall));
    const probed = new Set(PROBES.map((p) => p.syscall));
    expect([...denied].sort()).to.deep.equal([...probed].sort());
  });

  it("refuses each denied call with the filter's errno, which the same call does not get without it", async () => {
    const script = probeScript(rules);
    const [withFilter, without] = [await runProbe(filtered, script), await runProbe(control, script)];
    const errnoOf = (p: (typeof PROBES)[number]): string =>
      p.syscall === "clone3"
        ? "ENOSYS"
        : p.label.startsWith("socket(AF_NETLINK")
          ? "EPROTONOSUPPORT"
          : p.syscall === "socket"
            ? "EAFNOSUPPORT"
            : "EPERM";
    for (const p of PROBES) {
      if (!(p.label in withFilter)) continue; // not a syscall of this architecture (iopl on arm64)
      expect(withFilter[p.label], `${p.label} with the filter`).to.equal(errnoOf(p));
      if (p.attributable) expect(without[p.label], `${p.label} without the filter`).to.not.equal(errnoOf(p));
    }
  });

  it("leaves ordinary Python working: threads, subprocesses, multiprocessing, /tmp, loopback sockets", async () => {
    const k = await filtered.acquire();
    try {
      k.init([], null, 8000);
      const code = [
        "import threading, subprocess, multiprocessing as mp, socket, tempfile, os, ctypes, json",
        "out = []",
        "t = threading.Thread(target=lambda: out.append('thread')); t.start(); t.join()",
        "out.append(subprocess.run(['sh', '-c', 'echo sub'], capture_output=True, text=True).stdout.strip())",
        "with mp.get_context('fork').Pool(2) as p: out.append(sum(p.map(abs, [-1, -2, 3])))",
        "with tempfile.NamedTemporaryFile('w+', dir='/tmp') as f: f.write('x'); f.flush(); out.append(os.path.getsize(f.name))",
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()",
        "c = socket.create_connection(srv.getsockname()); a, _ = srv.accept(); c.sendall(b'hi'); out.append(a.recv(2).decode())",
        // glibc asks netlink (NETLINK_ROUTE, allowed) for the interfaces.
        "out.append(socket.if_nameindex()[0][1])",
        "cb = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1); out.append(cb(41))",
        "import numpy; out.append(int(numpy.arange(10).sum()))",
        "print(json.dumps(out))",
      ].join("\n");
      const r = await k.execute(code, { timeoutMs: 30_000, onTool: noTool });
      expect(r.outcome, r.error ?? "").to.equal("ok");
      expect(JSON.parse(r.stdout)).to.deep.equal(["thread", "sub", 6, 1, "hi", "lo", 42, 45]);
    } finally {
      await filtered.discard(k);
    }
  });
});

describe("worker sandbox: the compiled seccomp program", () => {
  const script = seccompScriptPath(kernelScriptPath());
  const rules = seccompRules("/usr/bin/python3", script);
  const bpf = compileSeccompFilter("/usr/bin/python3", script);
  const arch = process.arch === "arm64" ? AUDIT_ARCH.aarch64 : AUDIT_ARCH.x86_64;
  // read is in no rule: its number on the architectures we build for.
  const nr = (name: string): number =>
    name === "read" ? (process.arch === "arm64" ? 63 : 0) : rules.find((r) => r.syscall === name)!.nr!;
  const errnoOf = (name: string): number => constants.errno[name as keyof typeof constants.errno];
  /** Arguments that meet a rule's conditions. */
  const argsFor = (r: SeccompRule): bigint[] => {
    const args = [0n, 0n, 0n, 0n, 0n, 0n];
    for (const c of r.when) args[c.arg] = BigInt(c.op === "NE" ? c.value + 1 : c.value);
    return args;
  };

  it("refuses every rule's call with the rule's errno (capability-guarded calls included)", () => {
    for (const r of rules.filter((x) => x.nr !== null && x.nr >= 0))
      expect(runSeccomp(bpf, { nr: r.nr!, arch, args: argsFor(r) }), `${r.syscall} ${r.why}`).to.equal(
        RET.ERRNO | errnoOf(r.errno),
      );
  });

  it("allows what Python needs: plain clone, inet and unix sockets, netlink route", () => {
    const allowed: [string, bigint[]][] = [
      ["read", []],
      ["clone", [0x01200011n]], // fork(): CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
      ["clone", [0x003d0f00n]], // pthread_create's flags
      ["socket", [2n, 1n, 0n]],
      ["socket", [10n, 2n, 0n]],
      ["socket", [1n, 1n, 0n]],
      ["socket", [16n, 3n, 0n]],
    ];
    for (const [name, args] of allowed)
      expect(runSeccomp(bpf, { nr: nr(name), arch, args }), `${name}(${args.join(", ")})`).to.equal(
        RET.ALLOW,
      );
  });

  it("kills any syscall of another ABI (i386 through int 0x80, x32) instead of running it", () => {
    for (const d of [
      { nr: 20, arch: AUDIT_ARCH.i386 }, // i386 getpid
      { nr: 1, arch: AUDIT_ARCH.i386 },
      ...(arch === AUDIT_ARCH.x86_64 ? [{ nr: 0x40000000 + 39, arch }] : []), // x32 getpid
    ]) {
      const action = runSeccomp(bpf, d);
      expect([RET.KILL_PROCESS, RET.KILL_THREAD], JSON.stringify(d)).to.include(action);
    }
  });
});
