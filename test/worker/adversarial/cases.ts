// The adversarial table: hostile cells, one per attack, each with what containment means for
// it. suite.ts runs every case on the real sandbox (bwrap, seccomp, real Python) in whatever
// mode its process is in; adversarial.test.ts runs the suite in both modes (strict: root with
// cgroups; weak: uid 65532, no capabilities, no cgroups, the worker as PID 1), each with a secret
// in its environment and an inherited descriptor open on it.
import { existsSync } from "node:fs";
import { expect } from "chai";
import { type CellResult } from "../../../images/worker/sandbox/kernel.js";
import { TEST_LIMITS } from "../fixtures/sandbox.js";

export interface Ctx {
  /** A port listening on the host's 127.0.0.1. */
  port: number;
  /** Set in the worker's environment and in a file the worker holds open (inherited). */
  secret: string;
}

export interface Case {
  name: string;
  code: string | ((ctx: Ctx) => string);
  /** A second cell in the same kernel, for attacks that land between cells. */
  next?: string;
  timeoutMs?: number;
  /** The tool handler answers never (a hanging backend). */
  hangingTools?: boolean;
  check: (r: CellResult, obs: string, ctx: Ctx, next: CellResult | null) => void;
}

const notOk = (r: CellResult): void => {
  expect(r.outcome, "outcome").to.not.equal("ok");
};
const violation = (r: CellResult | null, reason: RegExp): void => {
  expect(r, "the cell after").to.not.equal(null);
  expect(r!).to.deep.include({ outcome: "killed", kernelAlive: false, violation: true });
  expect(r!.detail).to.match(/broke the channel protocol/);
  expect(r!.detail).to.match(reason);
  expect(r!.detail).to.not.match(/SIGKILL/);
};

/** Python that finds the channel: every descriptor that takes a write. */
export const writeAll = (bytes: string): string =>
  `for fd in range(3, 12):\n  try: os.write(fd, ${bytes})\n  except OSError: pass\n`;
export const frame = (obj: string): string =>
  `(lambda b: struct.pack('>I', len(b)) + b)(json.dumps(${obj}).encode())`;
/** The running exec request's nonce, read from the kernel's own frame (same interpreter). */
export const NONCE =
  "import sys\ndef nonce():\n  f = sys._getframe()\n  while f:\n    m = f.f_locals.get('msg')\n" +
  "    if isinstance(m, dict) and m.get('t') == 'exec': return m['id']\n    f = f.f_back\n";
/** Floods fd 4, the channel to the worker (fd 3, its input, is a socket nobody writes back on). */
export const FLOOD_THREAD =
  "import os, json, struct, threading, time\n" +
  `tiny = ${frame("{'t': 'tool', 'id': 7, 'name': 'search', 'arg': ''}")} * 512\n` +
  "def flood():\n  time.sleep(0.2)\n  while True: os.write(4, tiny)\n" +
  "threading.Thread(target=flood, daemon=True).start()\n";

export const CASES: Case[] = [
  // --- Network, secrets, files, privilege (the walls) ---
  {
    name: "connect to a port listening on the host's 127.0.0.1",
    code: (c) => `import socket\nsocket.create_connection(("127.0.0.1", ${c.port}), timeout=2)`,
    check: (r, obs) => {
      expect(r.outcome).to.equal("error");
      expect(obs).to.match(/ConnectionRefusedError|Network is unreachable/);
    },
  },
  {
    name: "connect to an outside address",
    code: `import socket\nsocket.create_connection(("1.1.1.1", 53), timeout=2)`,
    check: (r, obs) => {
      expect(r.outcome).to.equal("error");
      expect(obs).to.match(/Network is unreachable|OSError/);
    },
  },
  {
    name: "resolve a host name",
    code: `import socket\nsocket.gethostbyname("example.com")`,
    check: (r, obs) => {
      expect(r.outcome).to.equal("error");
      expect(obs).to.match(/gaierror|Errno/);
    },
  },
  {
    name: "read the environment",
    code: `import os\nprint(sorted(os.environ.items()))`,
    check: (r, obs, c) => {
      expect(r.outcome).to.equal("ok");
      expect(obs).to.not.include(c.secret);
      expect(obs).to.not.include("L0_");
      expect(obs).to.include("HOME");
    },
  },
  {
    name: "read /proc/1/environ and every visible process's environ",
    code:
      `import os\nout=[]\nfor p in os.listdir('/proc'):\n  if p.isdigit():\n    try: out.append(open(f'/proc/{p}/environ','rb').read())\n` +
      `    except OSError as e: out.append(repr(e).encode())\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]), b''.join(out))`,
    check: (r, obs, c) => {
      expect(obs).to.not.include(c.secret);
      // Only the sandbox's own few processes are visible (pid namespace).
      const n = Number(/^(\d+)/.exec(r.stdout)?.[1] ?? 99);
      expect(n).to.be.lessThan(5);
    },
  },
  {
    name: "look for the worker's inherited descriptors in every visible process",
    code:
      "import os\nfound = []\nfor p in [d for d in os.listdir('/proc') if d.isdigit()] + ['self']:\n" +
      "  try: fds = os.listdir(f'/proc/{p}/fd')\n  except OSError: continue\n  for fd in fds:\n" +
      "    try: found.append(open(f'/proc/{p}/fd/{fd}', 'rb').read(200))\n    except OSError: pass\n" +
      "print(sorted(int(f) for f in os.listdir('/proc/self/fd')), b''.join(found)[:2000])",
    check: (r, obs, c) => {
      expect(r.outcome).to.equal("ok");
      expect(obs).to.not.include(c.secret);
      // stdin (/dev/null), the capture (1, 2), the channel (3, 4), the capture file, the listing.
      const fds = JSON.parse(/^(\[[^\]]*\])/.exec(r.stdout)![1]!) as number[];
      expect(Math.max(...fds)).to.be.at.most(7);
    },
  },
  {
    name: "read files outside the workdir (host config, the worker's files, the token)",
    code:
      `import os\nfor p in ['/etc/passwd','/etc/shadow','/work/main/package.json','/root','/var/run/secrets','/home']:\n` +
      `  try: open(p).read(); print('READ', p)\n  except OSError as e: print('denied', p, type(e).__name__)\nprint(sorted(os.listdir('/')))`,
    check: (r, obs) => {
      expect(r.outcome).to.equal("ok");
      expect(obs).to.not.include("READ");
      expect(obs).to.include(
        "['bin', 'dev', 'etc', 'lib', 'lib64', 'opt', 'proc', 'run', 'sbin', 'tmp', 'usr']",
      );
    },
  },
  {
    name: "write outside the workdir",
    code: `for p in ['/usr/l0-pwned', '/opt/l0/kernel.py', '/etc/l0-pwned', '/l0-pwned', '/dev/l0-pwned', '/proc/l0']:\n  try: open(p,'w').write('x'); print('WROTE', p)\n  except OSError as e: print('denied', p, e.strerror)`,
    check: (_r, obs) => {
      expect(obs).to.not.include("WROTE");
      expect(existsSync("/usr/l0-pwned")).to.equal(false);
    },
  },
  {
    name: "reach kernel surface: a nested user namespace, nf_tables netlink, io_uring, bpf",
    code:
      "import ctypes, socket\nlibc = ctypes.CDLL(None, use_errno=True)\n" +
      "print('unshare', libc.unshare(0x10000000 | 0x20000), ctypes.get_errno())\n" +
      "try: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12); print('NETFILTER OPEN')\nexcept OSError as e: print('netfilter', e.errno)\n" +
      "print('io_uring', libc.syscall(425, 8, ctypes.create_string_buffer(120)), ctypes.get_errno())\n" +
      "print('bpf', libc.syscall(321, 0, ctypes.create_string_buffer(64), 64), ctypes.get_errno())",
    check: (r) => {
      if (process.arch !== "x64") return; // the syscall numbers above are x86_64's
      expect(r.stdout).to.equal("unshare -1 1\nnetfilter 93\nio_uring -1 1\nbpf -1 1\n");
    },
  },
  // --- Resources ---
  {
    name: "fork until refused (process limit per kernel, in both modes)",
    code: `import os, time\nfor i in range(200):\n  try:\n    if os.fork() == 0:\n      time.sleep(20); os._exit(0)\n  except OSError as e:\n    print('fork refused after', i, e.strerror); break`,
    check: (_r, obs) => {
      expect(obs).to.match(/fork refused after \d+ Resource temporarily unavailable/);
      expect(Number(/after (\d+)/.exec(obs)![1])).to.be.lessThan(TEST_LIMITS.processes);
    },
  },
  {
    name: "threads until refused (threads count toward the process limit)",
    code: `import threading, time\nn = 0\ntry:\n  while n < 500:\n    threading.Thread(target=time.sleep, args=(20,), daemon=True).start(); n += 1\nexcept RuntimeError as e: print('refused after', n)`,
    check: (_r, obs) => {
      expect(Number(/refused after (\d+)/.exec(obs)?.[1] ?? 999)).to.be.lessThan(TEST_LIMITS.processes);
    },
  },
  {
    name: "fork bomb",
    code: `import os\nwhile True:\n  try: os.fork()\n  except OSError: pass`,
    timeoutMs: 1500,
    check: (r) => notOk(r),
  },
  {
    name: "memory hog (one big allocation)",
    code: `x = bytearray(4 * 1024**3)`,
    check: (r, obs) => {
      expect(r.outcome).to.equal("error");
      expect(obs).to.include("MemoryError");
    },
  },
  {
    name: "memory hog (growing)",
    code: `x = []\nwhile True: x.append(bytearray(10**7))`,
    check: (r, obs) => {
      notOk(r);
      expect(obs).to.match(/MemoryError|memory/);
    },
  },
  {
    name: "memory the limits do not see: memfd, a tmpfs of its own, a nested namespace's mount",
    code:
      "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n" +
      "try: os.memfd_create('x'); print('MEMFD')\nexcept OSError as e: print('memfd', e.strerror)\n" +
      "print('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), ctypes.get_errno())",
    check: (r) => {
      expect(r.stdout).to.equal("memfd Operation not permitted\nmount -1 1\n");
    },
  },
  {
    name: "lower its own oom_score_adj so the worker dies first",
    code: "try: open('/proc/self/oom_score_adj', 'w').write('-1000'); print('LOWERED')\nexcept OSError as e: print(e.strerror)\nprint(open('/proc/self/oom_score_adj').read())",
    check: (r) => {
      expect(r.stdout).to.not.include("LOWERED");
      expect(r.stdout).to.match(/\n1000\n/);
    },
  },
  {
    name: "fill every writable place (/tmp, /dev/shm, the capture space)",
    code:
      "import os\nfor d in ('/tmp', '/dev/shm', '/run/l0'):\n  i = 0\n  try:\n    while True:\n" +
      "      with open(f'{d}/f{i}', 'wb') as f: f.write(b'0' * 2**20)\n      i += 1\n  except OSError as e: print(d, e.strerror)",
    check: (r) => {
      expect(r.stdout).to.match(/\/tmp (No space left on device|File too large)/);
      expect(r.stdout).to.match(/\/dev\/shm No space left on device/);
    },
  },
  // --- Time ---
  {
    name: "infinite loop (interrupted, kernel kept)",
    code: `while True: pass`,
    timeoutMs: 800,
    check: (r, obs) => {
      expect(r.outcome).to.equal("timeout");
      expect(r.kernelAlive).to.equal(true);
      expect(obs).to.include("deadline");
    },
  },
  {
    name: "infinite loop that ignores the interrupt (kernel killed)",
    code: `import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True: pass`,
    timeoutMs: 500,
    check: (r, obs) => {
      expect(r.outcome).to.equal("timeout");
      expect(r.kernelAlive).to.equal(false);
      expect(obs).to.match(/killed.*restarted/);
    },
  },
  {
    name: "cancel the alarm and block it, then sleep (the worker's deadline still holds)",
    code: `import signal, time\nsignal.setitimer(signal.ITIMER_REAL, 0)\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\ntime.sleep(30)`,
    timeoutMs: 500,
    check: (r) => {
      expect(r).to.deep.include({ outcome: "timeout", kernelAlive: false });
    },
  },
  {
    name: "swallow the timeout with except BaseException around a blocking call",
    code: `import time\ntry: time.sleep(30)\nexcept BaseException: pass\nprint('ran ok, honest')`,
    timeoutMs: 500,
    check: (r) => {
      expect(r.outcome).to.equal("timeout");
    },
  },
  {
    name: "a tool call that never returns (the deadline holds while it is in flight)",
    code: `search('never answers')`,
    timeoutMs: 700,
    hangingTools: true,
    check: (r) => {
      expect(r.outcome).to.equal("timeout");
      expect(r.kernelAlive).to.equal(true);
    },
  },
  {
    name: "a child that keeps burning CPU after its cell timed out",
    code: `import subprocess, time\np = subprocess.Popen(['sh', '-c', 'while :; do :; done'])\ntime.sleep(30)`,
    timeoutMs: 600,
    next: `p.wait()`,
    check: (r, _o, _c, next) => {
      expect(r.outcome).to.equal("timeout");
      expect(next?.result).to.equal("-9");
    },
  },
  // --- Output ---
  {
    name: "huge output from print",
    code: `print('x' * 10**8)`,
    check: (r, obs) => {
      expect(r.outcome).to.equal("ok");
      expect(obs.length).to.be.lessThan(5000);
      expect(obs).to.match(/characters of output were cut/);
    },
  },
  {
    name: "huge output from a child process",
    code: `import os\nos.system('yes | head -c 50000000')`,
    check: (_r, obs) => {
      expect(obs.length).to.be.lessThan(5000);
      expect(obs).to.match(/cut|lost/);
    },
  },
  {
    name: "output cut inside surrogate pairs",
    code: `print('a' + '\\U0001F600' * 3000)`,
    check: (r, obs) => {
      expect(r.outcome).to.equal("ok");
      expect(obs).to.match(/characters cut/);
      expect(obs).to.equal(Buffer.from(obs, "utf8").toString("utf8")); // no lone surrogate
    },
  },
  {
    name: "a forged result carrying lone surrogates",
    code:
      "import os, json, struct\n" +
      NONCE +
      `os.write(4, ${frame("{'t': 'result', 'id': nonce(), 'ok': True, 'stdout': '\\ud800 x \\udfff'}")})`,
    next: "1 + 1",
    check: (r) => {
      expect(r.stdout).to.equal("\uFFFD x \uFFFD");
    },
  },
  {
    name: "disk fill",
    code: `f = open('/tmp/fill', 'wb')\nwhile True: f.write(b'0' * 2**20)`,
    check: (r, obs) => {
      expect(r.outcome).to.equal("error");
      expect(obs).to.match(/No space left on device|File too large/);
    },
  },
  // --- Processes and lifetime ---
  {
    name: "kill the parent and pid 1",
    code: `import os, signal\nfor p in (os.getppid(), 1):\n  try: os.kill(p, signal.SIGKILL); print('sent', p)\n  except OSError as e: print('refused', p, e.strerror)\nprint('still here')`,
    check: (_r, obs) => {
      expect(obs).to.include("still here");
    },
  },
  {
    name: "kill every process it can see (only itself and the sandbox init are visible)",
    code: `import os, signal\ntry: os.kill(-1, signal.SIGKILL)\nexcept OSError as e: print(e.strerror)\nprint('still here')`,
    check: (_r, obs) => {
      expect(obs).to.include("still here");
    },
  },
  {
    name: "the kernel kills itself",
    code: `import os, signal\nos.kill(os.getpid(), signal.SIGKILL)`,
    check: (r, obs) => {
      expect(r.outcome).to.equal("killed");
      expect(obs).to.match(/killed by SIGKILL.*restarted/);
    },
  },
  {
    name: "ptrace the sandbox's init to clear its parent-death signal, or write its memory",
    code:
      "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n" +
      "print('attach', libc.ptrace(16, 1, 0, 0), ctypes.get_errno())\n" +
      "print('seize', libc.ptrace(0x4206, os.getppid(), 0, 0), ctypes.get_errno())\n" +
      "try: open('/proc/1/mem', 'wb').write(b'x'); print('WROTE')\nexcept OSError as e: print('mem', e.errno)",
    check: (r) => {
      expect(r.stdout).to.match(/^attach -1 1\nseize -1 1\nmem \d+\n$/);
    },
  },
  {
    name: "a double-forked daemon that ignores every signal it can (must not outlive the episode)",
    code:
      "import os, signal, time, ctypes\nif os.fork() == 0:\n  os.setsid()\n  if os.fork() == 0:\n" +
      "    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT): signal.signal(s, signal.SIG_IGN)\n" +
      "    libc = ctypes.CDLL(None)\n    libc.prctl(1, 0)  # PR_SET_PDEATHSIG 0\n    libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER\n" +
      "    libc.prctl(4, 0)  # PR_SET_DUMPABLE 0: hide from /proc\n    time.sleep(600)\n  os._exit(0)\ntime.sleep(0.3)\nprint('daemon up')",
    check: (r) => {
      expect(r.stdout).to.include("daemon up");
    },
  },
  {
    name: "leave zombies (children it never waits for)",
    code: "import os\nfor i in range(5):\n  if os.fork() == 0: os._exit(0)\nprint('left')",
    check: (r) => {
      expect(r.stdout).to.include("left");
    },
  },
  // --- The channel: the worker is never at the kernel's mercy ---
  {
    name: "garbage on the channel (oversized length header)",
    code: `import os\n${writeAll("b'\\xff\\xff\\xff\\xffgarbage'")}import time; time.sleep(1)`,
    check: (r, obs) => {
      violation(r, /exceeds the \d+-byte cap/);
      expect(obs).to.match(/protocol/);
    },
  },
  {
    name: "a forged frame of an unknown type on the channel",
    code: `import os, json, struct\n${writeAll(frame("{'t': 'pwn'}"))}import time; time.sleep(1)`,
    check: (r) => violation(r, /unknown type/),
  },
  {
    name: "a forged tool call for a tool that is not enabled",
    code: `import os, json, struct\nos.write(4, ${frame("{'t': 'tool', 'id': 999, 'name': 'shell', 'arg': 'id'}")})\nprint('sent')`,
    check: (r) => {
      // The worker answers the forged call with an error; the cell itself completes.
      expect(r.kernelAlive).to.equal(true);
    },
  },
  {
    name: "flood tiny frames during the cell",
    code: `import os, json, struct\nb = ${frame("{'t': 'tool', 'id': 1, 'name': 'search', 'arg': ''}")} * 100000\nos.write(4, b)\nimport time; time.sleep(2)`,
    check: (r) => violation(r, /more than 64 frames in one request/),
  },
  {
    name: "flood tiny frames from a thread once the cell has answered",
    code: FLOOD_THREAD + "print('answered')",
    next: "import time; time.sleep(1)",
    check: (r, _o, _c, next) => {
      // The flood may beat the answer (killed in the cell) or follow it (killed before the next).
      violation(
        r.outcome === "killed" ? r : next,
        /outside any request|followed the answer|frames in one request/,
      );
    },
  },
  {
    name: "large frames, each under the cap, until the request's byte budget is spent",
    code: `import os, json, struct\nb = ${frame("{'t': 'tool', 'id': 1, 'name': 'search', 'arg': 'x' * 2000000}")}\nfor i in range(8): os.write(4, b)\nimport time; time.sleep(2)`,
    check: (r) => violation(r, /more than \d+ bytes in one request/),
  },
  {
    name: "half a frame header, then silence (the deadline still holds)",
    code: "import os\nos.write(4, b'\\x00\\x00')\nimport time\ntry: time.sleep(30)\nexcept BaseException: time.sleep(30)",
    timeoutMs: 500,
    check: (r) => {
      expect(r).to.deep.include({ outcome: "timeout", kernelAlive: false });
    },
  },
  {
    name: "write to the channel from a forked child after the cell has answered",
    code:
      "import os, json, struct, time\nif os.fork() == 0:\n  time.sleep(0.3)\n" +
      `  os.write(4, ${frame("{'t': 'result', 'id': 'x', 'ok': True}")})\n  os._exit(0)\nprint('forked')`,
    next: "import time; time.sleep(1)",
    // The child's frame lands between the cells or in the next one: either way it is not an answer.
    check: (_r, _o, _c, next) =>
      violation(next, /outside any request|followed the answer|another request's nonce/),
  },
  // --- Results the cell cannot write ---
  {
    name: "forge a result for a future cell (its nonce is not known yet)",
    code:
      "import os, json, struct, threading, time\ndef later():\n  time.sleep(0.3)\n" +
      `  os.write(4, ${frame("{'t': 'result', 'id': '00000000-0000-4000-8000-000000000002', 'ok': True}")})\n` +
      "threading.Thread(target=later).start()",
    next: "import time; time.sleep(1)",
    check: (_r, _o, _c, next) => violation(next, /outside any request|another request's nonce/),
  },
  {
    name: "forge this cell's result with its real nonce, then block past the deadline",
    code:
      "import os, json, struct\n" +
      NONCE +
      `os.write(4, ${frame("{'t': 'result', 'id': nonce(), 'ok': True, 'stdout': 'all good'}")})\nimport time; time.sleep(30)`,
    timeoutMs: 800,
    next: "1 + 1",
    check: (r, _o, _c, next) => {
      // The forgery arrives in time and is taken (the kernel's own answer cannot be told from
      // it), but the kernel's real answer then breaks the protocol: the kernel dies, and the
      // episode voids everything it reported (episode-level test: the reward parity table).
      expect(r.stdout).to.equal("all good");
      violation(next, /outside any request|followed the answer|another request's nonce/);
    },
  },
  {
    name: "a second result with the right nonce in the same write as the first",
    code:
      "import os, json, struct\n" +
      NONCE +
      `b = ${frame("{'t': 'result', 'id': nonce(), 'ok': True}")}\nos.write(4, b + b)`,
    next: "1 + 1",
    check: (r, _o, _c, next) =>
      violation(r.outcome === "killed" ? r : next, /followed the answer|outside any request/),
  },
];
