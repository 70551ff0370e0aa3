// The worker keeps memory headroom: the container's working set read from cgroup v1/v2 files,
// the biggest kernel (resident memory plus its tmpfs contents) chosen and killed with a named
// reason when the headroom is gone, and the other kernels left alone.
import { expect } from "chai";
import { silentLogger } from "../../lib/log.js";
import { MemoryGuard, parseMemory, pickVictim } from "../../images/worker/sandbox/memory.js";
import { type ToolHandler } from "../../images/worker/sandbox/kernel.js";
import { testPool } from "./fixtures/sandbox.js";

const MiB = 2 ** 20;
const noTool: ToolHandler = () => Promise.resolve("");

describe("worker memory guard: decisions", () => {
  it("reads the working set from cgroup v2 and v1 files, and no limit as nothing to guard", () => {
    const v2 = { usage: "500000000\n", limit: "1000000000\n", stat: "anon 1\ninactive_file 100000000\n" };
    expect(parseMemory("v2", v2)).to.deep.equal({ usedBytes: 400_000_000, limitBytes: 1_000_000_000 });
    expect(parseMemory("v2", { ...v2, limit: "max\n" })).to.equal(null);
    const v1 = { usage: "300", limit: "1000", stat: "cache 9\ntotal_inactive_file 100\n" };
    expect(parseMemory("v1", v1)).to.deep.equal({ usedBytes: 200, limitBytes: 1000 });
    expect(parseMemory("v1", { ...v1, limit: "9223372036854771712" })).to.equal(null);
    expect(parseMemory("v1", { ...v1, usage: null })).to.equal(null);
  });

  it("picks the biggest kernel only when the headroom is gone", () => {
    const kernels = [
      { name: "a", bytes: 10 * MiB },
      { name: "b", bytes: 90 * MiB },
      { name: "c", bytes: 30 * MiB },
    ];
    const reading = (free: number) => ({ usedBytes: 1000 * MiB - free, limitBytes: 1000 * MiB });
    expect(pickVictim(reading(300 * MiB), 256 * MiB, kernels)).to.equal(null);
    expect(pickVictim(reading(200 * MiB), 256 * MiB, kernels)).to.equal("b");
    expect(pickVictim(null, 256 * MiB, kernels)).to.equal(null);
    expect(pickVictim(reading(0), 256 * MiB, [])).to.equal(null);
  });
});

describe("worker memory guard: on real kernels", function () {
  this.timeout(60_000);

  it("kills the kernel holding the most (memory and tmpfs), with the reason, and only that one", async () => {
    const { pool } = testPool(0);
    const [big, small] = [await pool.acquire(), await pool.acquire()];
    try {
      for (const k of [big, small]) k.init([], null, 2000);
      // A file in /tmp (memory no per-process limit sees) counts, then resident memory.
      const before = big.footprintBytes();
      await big.execute("open('/tmp/f', 'wb').write(b'1' * 6 * 2**20)", {
        timeoutMs: 20_000,
        onTool: noTool,
      });
      expect(big.footprintBytes() - before).to.be.greaterThan(6 * MiB);
      const r = await big.execute("x = bytearray(120 * 2**20)\nfor i in range(0, len(x), 4096): x[i] = 1", {
        timeoutMs: 20_000,
        onTool: noTool,
      });
      expect(r.outcome, r.error ?? "").to.equal("ok");
      expect(big.footprintBytes() - before).to.be.greaterThan(126 * MiB);
      let free = 500 * MiB;
      const guard = new MemoryGuard({
        kernels: () => pool.live(),
        headroomBytes: 256 * MiB,
        logger: silentLogger(),
        read: () => ({ usedBytes: 1000 * MiB - free, limitBytes: 1000 * MiB }),
        intervalMs: 0,
      });
      expect(guard.check()).to.equal(null); // room enough: nobody is touched
      free = 100 * MiB;
      expect(guard.check()).to.equal(big.name);
      const dead = await big.execute("1", { timeoutMs: 5000, onTool: noTool });
      expect(dead).to.deep.include({ outcome: "killed", kernelAlive: false });
      expect(dead.detail).to.match(
        /ran low on memory \(900 of 1000 MiB\) and killed the kernel using the most/,
      );
      expect((await small.execute("1 + 1", { timeoutMs: 5000, onTool: noTool })).result).to.equal("2");
    } finally {
      await pool.discard(big);
      await pool.discard(small);
      await pool.close();
    }
  });
});
