// The adversarial table, part 1: the sandbox's walls (network, secrets, files, kernel surface),
// resources, time and output. Each hostile cell comes with what containment means for it; suite.ts
// runs them on the real sandbox in its process's mode, adversarial.test.ts in both modes.
import { existsSync } from "node:fs";
import { expect } from "chai";
import { TEST_LIMITS } from "../fixtures/sandbox.js";
import { type Case, NONCE, frame, notOk } from "./helpers.js";

export const WALL_CASES: Case[] = [
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
      expect(r.outcome, r.detail).to.equal("timeout");
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
];
