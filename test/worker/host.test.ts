// Sandbox host decisions: strict mode fails closed without a pids cgroup, weak mode says so
// loudly and still bounds processes through the kernel's own uid; worker config errors name the flag.
import { Writable } from "node:stream";
import { expect } from "chai";
import { loadConfig } from "../../lib/config.js";
import { createLogger } from "../../lib/log.js";
import { WORKER_CONFIG, WORKER_ENV_PREFIX } from "../../images/worker/config.js";
import { type CgroupLayout } from "../../images/worker/sandbox/cgroup.js";
import { prepareSandbox } from "../../images/worker/sandbox/host.js";
import { KernelPool } from "../../images/worker/sandbox/pool.js";
import { TEST_LIMITS } from "./fixtures/sandbox.js";

const NONE: CgroupLayout = {
  version: "none",
  pidsParent: null,
  memoryParent: null,
  notes: ["cgroup v1: /x is not writable"],
};

function capture(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { logger: createLogger({ component: "t", format: "json", stream }), lines };
}

describe("worker sandbox: host modes", function () {
  this.timeout(30_000);
  const settings = (mode: "strict" | "weak") => ({
    mode,
    limits: TEST_LIMITS,
    uidBase: 310_000 + (process.pid % 500) * 10,
    uidRange: 10,
  });

  it("strict mode fails closed without a pids cgroup, saying why and what to do", () => {
    const { logger } = capture();
    expect(() => prepareSandbox(settings("strict"), logger, NONE)).to.throw(
      /no writable pids cgroup.*not writable.*--sandbox-mode weak/,
    );
  });

  it("fails when bwrap is missing", () => {
    const { logger } = capture();
    expect(() => prepareSandbox({ ...settings("weak"), bwrap: "/nonexistent/bwrap" }, logger, NONE)).to.throw(
      /missing \/nonexistent\/bwrap/,
    );
  });

  it("weak mode logs its weaknesses loudly and still bounds processes by the kernel's own uid", async () => {
    const { logger, lines } = capture();
    const host = prepareSandbox(settings("weak"), logger, NONE);
    expect(lines.join("")).to.match(/SANDBOX IS WEAKER THAN STRICT.*RLIMIT_NPROC/);
    const pool = new KernelPool({ host, size: 0, logger, namePrefix: `l0-weak-${process.pid}` });
    const k = await pool.acquire();
    try {
      k.init([], null, 2000);
      const r = await k.execute(
        `import os, time\nfor i in range(200):\n  try:\n    if os.fork() == 0:\n      time.sleep(20); os._exit(0)\n  except OSError as e:\n    print('refused after', i); break`,
        { timeoutMs: 5000, onTool: () => Promise.resolve("") },
      );
      const n = Number(/refused after (\d+)/.exec(r.stdout)?.[1] ?? 999);
      expect(n).to.be.lessThan(TEST_LIMITS.processes);
    } finally {
      await pool.discard(k);
      await pool.close();
    }
  });

  it("binds the task's text to `task`, so a cell can work on the question without copying it", async () => {
    const { logger } = capture();
    const host = prepareSandbox(settings("weak"), logger, NONE);
    const pool = new KernelPool({ host, size: 0, logger, namePrefix: `l0-task-${process.pid}` });
    const k = await pool.acquire();
    try {
      k.init([], null, 2000, "What is 487 * 36?");
      const r = await k.execute(`print(eval(task.split("is ")[1].rstrip("?")))`, {
        timeoutMs: 5000,
        onTool: () => Promise.resolve(""),
      });
      expect(r.stdout.trim()).to.equal("17532");
    } finally {
      await pool.discard(k);
      await pool.close();
    }
  });
});

describe("worker config", () => {
  it("names every missing or bad flag with its variable", () => {
    expect(() => loadConfig(WORKER_CONFIG, { flags: {}, env: {}, envPrefix: WORKER_ENV_PREFIX })).to.throw(
      /--hub \(L0_WORKER_HUB\): is required.*--token-file \(L0_WORKER_TOKEN_FILE\): is required/,
    );
    expect(() =>
      loadConfig(WORKER_CONFIG, {
        flags: {},
        env: {
          L0_WORKER_HUB: "h:1",
          L0_WORKER_TOKEN_FILE: "/t",
          L0_WORKER_ENGINE_URL: "ftp://x",
          L0_WORKER_EPISODES: "0",
        },
        envPrefix: WORKER_ENV_PREFIX,
      }),
    ).to.throw(
      /--engine-url \(L0_WORKER_ENGINE_URL\): must match.*--episodes \(L0_WORKER_EPISODES\): must be at least 1/,
    );
  });

  it("reads durations and defaults", () => {
    const c = loadConfig(WORKER_CONFIG, {
      flags: {},
      env: {
        L0_WORKER_HUB: "h:1",
        L0_WORKER_TOKEN_FILE: "/t",
        L0_WORKER_ENGINE_URL: "http://e",
        L0_WORKER_GRACE: "45s",
      },
      envPrefix: WORKER_ENV_PREFIX,
    });
    expect(c.grace).to.equal(45_000);
    expect(c.sandboxMode).to.equal("strict");
    expect(c.episodes).to.equal(4);
  });
});
