// The adversarial table, part 2: processes and lifetime, the channel (the worker is never at a
// kernel's mercy) and results the cell cannot write. See cases-walls.ts for part 1.
import { expect } from "chai";
import { type Case, FLOOD_THREAD, NONCE, frame, violation, writeAll } from "./helpers.js";

export const CHANNEL_CASES: Case[] = [
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
