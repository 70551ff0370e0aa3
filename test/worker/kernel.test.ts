// One kernel on the real sandbox, mechanism by mechanism: it speaks only when asked and within
// bounds, the worker's clock decides timeouts (tool call in flight or not), what a timed-out cell
// started is killed, kill() leaves nothing of the sandbox, output survives a full /tmp, only the
// channel crosses into the kernel, and the kernel is the OOM killer's first choice.
import { spawn } from "node:child_process";
import { openSync, closeSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { FrameDecoder, type KernelFrame, encodeFrame } from "../../images/worker/sandbox/framing.js";
import { kernelScriptPath } from "../../images/worker/sandbox/host.js";
import { type Kernel, type ToolHandler } from "../../images/worker/sandbox/kernel.js";
import { type KernelPool } from "../../images/worker/sandbox/pool.js";
import { processesIn, sandboxNamespace, stat, until } from "./fixtures/procs.js";
import { testPool } from "./fixtures/sandbox.js";

const noTool: ToolHandler = () => Promise.resolve("");
/** Writes a frame to every descriptor that takes it: agent code looking for the channel. */
const forge = (frame: string): string =>
  `import os, json, struct\nb = json.dumps(${frame}).encode()\nfor fd in range(3, 10):\n  try: os.write(fd, struct.pack('>I', len(b)) + b)\n  except OSError: pass\n`;

describe("worker sandbox: one kernel", function () {
  this.timeout(60_000);
  let pool: KernelPool;
  let k: Kernel;
  before(() => ({ pool } = testPool(0)));
  beforeEach(async () => {
    k = await pool.acquire();
    k.init(["search"], null, 4000);
  });
  afterEach(() => pool.discard(k));
  after(() => pool.close());

  it("is killed, with the reason named, for frames it sends while no request is pending", async () => {
    const r = await k.execute(
      `import threading, time\ndef later():\n  time.sleep(0.3)\n${forge("{'t': 'tool', 'id': 1, 'name': 'search', 'arg': 'x'}").replace(/^/gm, "  ")}\nthreading.Thread(target=later).start()`,
      { timeoutMs: 5000, onTool: noTool },
    );
    expect(r.outcome).to.equal("ok");
    await until(() => !k.alive, "the kernel to be killed");
    const next = await k.execute("1 + 1", { timeoutMs: 5000, onTool: noTool });
    expect(next).to.deep.include({ outcome: "killed", kernelAlive: false, violation: true });
    expect(next.detail).to.match(/broke the channel protocol \(\d+ bytes arrived outside any request\)/);
  });

  it("is killed for more frames in one cell than a request allows", async () => {
    const r = await k.execute(
      `import os, json, struct\nfor i in range(100):\n  b = json.dumps({'t': 'tool', 'id': 1000 + i, 'name': 'search', 'arg': 'x'}).encode()\n  os.write(4, struct.pack('>I', len(b)) + b)\nimport time; time.sleep(2)`,
      { timeoutMs: 5000, onTool: () => new Promise(() => undefined) },
    );
    expect(r).to.deep.include({ outcome: "killed", violation: true });
    expect(r.detail).to.match(/more than 64 frames in one request/);
  });

  it("is killed at a frame's header when the frame is over the cap, before its body is buffered", async () => {
    const r = await k.execute(
      `import os, struct\nos.write(4, struct.pack('>I', 1 << 30))\nimport time; time.sleep(2)`,
      {
        timeoutMs: 5000,
        onTool: noTool,
      },
    );
    expect(r.detail).to.match(/a frame of 1073741824 bytes exceeds the \d+-byte cap/);
  });

  it("keeps the deadline while a tool call hangs: the call is answered with an error and aborted", async () => {
    let signal: AbortSignal | undefined;
    const r = await k.execute(`search('hangs')`, {
      timeoutMs: 800,
      onTool: (_n, _a, s) => {
        signal = s;
        return new Promise(() => undefined); // never answers
      },
    });
    expect(r.outcome, r.detail).to.equal("timeout");
    expect(r.kernelAlive).to.equal(true);
    expect(signal?.aborted).to.equal(true);
    // The channel is still in step: the kernel answers the next cell.
    expect((await k.execute("6 * 7", { timeoutMs: 5000, onTool: noTool })).result).to.equal("42");
  });

  it("decides a timeout by its own clock, whatever the kernel says", async () => {
    const r = await k.execute(`import time\ntry: time.sleep(5)\nexcept BaseException: pass`, {
      timeoutMs: 500,
      onTool: noTool,
    });
    expect(r.outcome).to.equal("timeout");
    expect(r.kernelAlive).to.equal(true);
  });

  it("kills what a timed-out cell left running, and keeps the kernel", async () => {
    const r = await k.execute(
      `import subprocess, time\np = subprocess.Popen(['sh', '-c', 'while :; do :; done'])\ntime.sleep(30)`,
      { timeoutMs: 800, onTool: noTool },
    );
    expect(r).to.deep.include({ outcome: "timeout", kernelAlive: true });
    // The busy child died by SIGKILL (the kernel reaps it and sees -9).
    const next = await k.execute("p.wait()", { timeoutMs: 5000, onTool: noTool });
    expect(next.result).to.equal("-9");
  });

  it("kill() leaves no process of the sandbox behind, a detached daemon included", async () => {
    const r = await k.execute(
      `import os, signal, time\nif os.fork() == 0:\n  os.setsid()\n  if os.fork() == 0:\n    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT): signal.signal(s, signal.SIG_IGN)\n    time.sleep(600)\n  os._exit(0)\ntime.sleep(0.3)\nprint(len(os.listdir('/proc')))`,
      { timeoutMs: 5000, onTool: noTool },
    );
    expect(r.outcome).to.equal("ok");
    const ns = sandboxNamespace(k);
    expect(processesIn(ns).length).to.be.greaterThan(2); // init, kernel, daemon
    expect(await k.kill()).to.equal(true);
    expect(processesIn(ns)).to.deep.equal([]);
  });

  it("keeps child-process output when /tmp is full, and says so when the capture space is", async () => {
    const r = await k.execute(
      // File after file (each stops at RLIMIT_FSIZE), down to single bytes, until /tmp is full.
      "import os, errno\nerr = None\nfor i in range(100):\n  fd = os.open('/tmp/fill%d' % i, os.O_WRONLY | os.O_CREAT)\n" +
        "  for n in (2**20, 2**12, 1):\n    try:\n      while True: os.write(fd, b'0' * n)\n" +
        "    except OSError as e: err = e\n  if err.errno == errno.ENOSPC: break\n" +
        "print('tmp', err.strerror, os.statvfs('/tmp').f_bavail)\nos.system('echo still-here')",
      { timeoutMs: 10_000, onTool: noTool },
    );
    expect(r.stdout).to.match(/^tmp No space left on device 0\n/);
    expect(r.stdout).to.include("still-here");
    const full = await k.execute(
      `import os\nos.system('head -c 20000000 /dev/zero | tr "\\\\0" x; echo after')`,
      {
        timeoutMs: 10_000,
        onTool: noTool,
      },
    );
    expect(full.stdout).to.match(/output of child processes was lost: the space that captures it is full/);
  });

  it("runs the kernel at oom_score_adj 1000, which agent code cannot lower", async () => {
    const r = await k.execute(
      `print(open('/proc/self/oom_score_adj').read().strip())\ntry: open('/proc/self/oom_score_adj', 'w').write('0')\nexcept OSError as e: print('refused', e.strerror)`,
      { timeoutMs: 5000, onTool: noTool },
    );
    expect(r.stdout).to.match(/^1000\nrefused /);
  });
});

describe("worker sandbox: kernel.py on its own", function () {
  this.timeout(30_000);

  it("closes every inherited descriptor but the channel before any cell runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-fd-"));
    writeFileSync(join(dir, "secret"), "inherited-secret");
    const fd = openSync(join(dir, "secret"), "r");
    const child = spawn("/usr/bin/python3", ["-I", "-B", kernelScriptPath(), "--nofile", "64"], {
      stdio: ["pipe", "pipe", "pipe", fd, fd, fd],
      env: { TMPDIR: dir },
    });
    closeSync(fd);
    const dec = new FrameDecoder();
    const frames: KernelFrame[] = [];
    const next = (): Promise<KernelFrame> =>
      new Promise((resolve) => {
        const poll = (): void => void (frames.length ? resolve(frames.shift()!) : setImmediate(poll));
        poll();
      });
    child.stdout!.on("data", (c: Buffer) => frames.push(...dec.push(c)));
    try {
      expect((await next()).t).to.equal("ready");
      const code =
        "import os\nfor f in sorted(int(f) for f in os.listdir('/proc/self/fd')):\n" +
        "  try: print(f, os.readlink('/proc/self/fd/%d' % f))\n  except OSError: pass";
      child.stdin!.write(encodeFrame({ t: "exec", id: "n1", code, timeout: 5 }));
      const r = await next();
      if (r.t !== "result") throw new Error(`unexpected ${r.t}`);
      expect(r.error).to.equal(null);
      // /dev/null, the capture file, the channel's pipes: the inherited file is gone.
      expect(r.stdout).to.match(/^0 \/dev\/null\n/);
      expect(r.stdout).to.match(/\n3 (pipe|socket):/);
      expect(r.stdout).to.not.include("secret");
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("worker sandbox: what a cell leaves in /proc", () => {
  it("stat() reads state and parent", () => {
    expect(stat(process.pid)?.ppid).to.equal(process.ppid);
  });
});
