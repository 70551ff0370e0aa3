// Hostile agent code against the real sandbox (bwrap, setpriv, cgroups, real Python): each case
// checks containment, a clear observation, and that the worker can still run a kernel after.
import { existsSync, readdirSync } from "node:fs";
import net from "node:net";
import { type AddressInfo } from "node:net";
import { expect } from "chai";
import { renderObservation } from "../../images/worker/agent/notebook.js";
import { type CellResult, type Kernel } from "../../images/worker/sandbox/kernel.js";
import { type KernelPool } from "../../images/worker/sandbox/pool.js";
import { TEST_LIMITS, testPool } from "./fixtures/sandbox.js";

const SECRET = "l0-test-secret-" + Math.random().toString(36).slice(2);

interface Case {
  name: string;
  code: string | ((ctx: Ctx) => string);
  timeoutMs?: number;
  check: (r: CellResult, obs: string, ctx: Ctx, k: Kernel) => void;
}
interface Ctx {
  port: number;
}

const notOk = (r: CellResult): void => {
  expect(r.outcome, "outcome").to.not.equal("ok");
};

const CASES: Case[] = [
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
    check: (r, obs) => {
      expect(r.outcome).to.equal("ok");
      expect(obs).to.not.include(SECRET);
      expect(obs).to.not.include("L0_");
      expect(obs).to.include("HOME");
    },
  },
  {
    name: "read /proc/1/environ and every visible process's environ",
    code:
      `import os\nout=[]\nfor p in os.listdir('/proc'):\n  if p.isdigit():\n    try: out.append(open(f'/proc/{p}/environ','rb').read())\n` +
      `    except OSError as e: out.append(repr(e).encode())\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]), b''.join(out))`,
    check: (r, obs) => {
      expect(obs).to.not.include(SECRET);
      // Only the sandbox's own few processes are visible (pid namespace).
      const n = Number(/^(\d+)/.exec(r.stdout)?.[1] ?? 99);
      expect(n).to.be.lessThan(5);
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
    check: (r, obs) => {
      expect(obs).to.not.include("WROTE");
      expect(existsSync("/usr/l0-pwned")).to.equal(false);
    },
  },
  {
    name: "fork until refused (process limit)",
    code: `import os, time\nfor i in range(200):\n  try:\n    if os.fork() == 0:\n      time.sleep(20); os._exit(0)\n  except OSError as e:\n    print('fork refused after', i, e.strerror); break`,
    check: (r, obs, _c, k) => {
      expect(obs).to.match(/fork refused after \d+ Resource temporarily unavailable/);
      const n = Number(/after (\d+)/.exec(obs)![1]);
      expect(n).to.be.lessThan(TEST_LIMITS.processes);
      expect(k.pids().length).to.be.at.most(TEST_LIMITS.processes + 3); // + sh/bwrap outside the limit
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
    check: (r, obs) => {
      expect(obs.length).to.be.lessThan(5000);
      expect(obs).to.match(/cut/);
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
    name: "garbage on the channel (oversized length header)",
    code: `import os\nfor fd in range(3, 12):\n  try: os.write(fd, b'\\xff\\xff\\xff\\xffgarbage')\n  except OSError: pass\nimport time; time.sleep(1)`,
    check: (r, obs) => {
      expect(r.outcome).to.equal("killed");
      expect(obs).to.match(/protocol/);
    },
  },
  {
    name: "a forged frame of an unknown type on the channel",
    code: `import os, json, struct\nb = json.dumps({"t": "pwn"}).encode()\nfor fd in range(3, 12):\n  try: os.write(fd, struct.pack('>I', len(b)) + b)\n  except OSError: pass\nimport time; time.sleep(1)`,
    check: (r, obs) => {
      expect(r.outcome).to.equal("killed");
      expect(obs).to.match(/protocol.*unknown type/);
    },
  },
  {
    name: "a forged tool call for a tool that is not enabled",
    code:
      `import os, json, struct\nb = json.dumps({"t": "tool", "id": 999, "name": "shell", "arg": "id"}).encode()\n` +
      `os.write(4, struct.pack('>I', len(b)) + b)\nprint('sent')`,
    check: (r) => {
      // The worker answers the forged call with an error; the cell itself completes.
      expect(r.kernelAlive).to.equal(true);
    },
  },
];

describe("worker sandbox: adversarial agent code", function () {
  this.timeout(60_000);
  let pool: KernelPool;
  let server: net.Server;
  let ctx: Ctx;
  const toolsSeen: string[] = [];

  before(async () => {
    process.env.L0_WORKER_TEST_SECRET = SECRET;
    ({ pool } = testPool(2));
    await pool.fill();
    server = net.createServer((s) => s.end("hello from the host\n"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    ctx = { port: (server.address() as AddressInfo).port };
  });
  after(async () => {
    delete process.env.L0_WORKER_TEST_SECRET;
    await pool.close();
    server.close();
  });

  for (const c of CASES) {
    it(`contains: ${c.name}`, async () => {
      const k = await pool.acquire();
      try {
        k.init(["search"], null, 2000);
        const code = typeof c.code === "function" ? c.code(ctx) : c.code;
        const r = await k.execute(code, {
          timeoutMs: c.timeoutMs ?? 5000,
          onTool: (name, arg) => {
            toolsSeen.push(name);
            if (name !== "search") return Promise.reject(new Error(`unknown tool ${name}`));
            return Promise.resolve(`results for ${arg}`);
          },
        });
        const obs = renderObservation(r, 2000).text;
        c.check(r, obs, ctx, k);
      } finally {
        await pool.discard(k);
      }
      // The worker is healthy: a fresh kernel computes, and the dead one left no cgroup behind.
      const next = await pool.acquire();
      try {
        next.init([], null, 2000);
        const ok = await next.execute("1 + 1", { timeoutMs: 5000, onTool: () => Promise.resolve("") });
        expect(ok.result).to.equal("2");
      } finally {
        await pool.discard(next);
      }
      await pool.settle();
      expect(leftoverCgroups(k.name)).to.deep.equal([]);
    });
  }
});

function leftoverCgroups(name: string): string[] {
  const out: string[] = [];
  for (const root of ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory"]) {
    try {
      const walk = (dir: string, depth: number): void => {
        for (const e of readdirSync(dir, { withFileTypes: true })) {
          if (!e.isDirectory()) continue;
          if (e.name === name) out.push(`${dir}/${e.name}`);
          else if (depth < 3) walk(`${dir}/${e.name}`, depth + 1);
        }
      };
      walk(root, 0);
    } catch {
      // No such controller here.
    }
  }
  return out;
}
