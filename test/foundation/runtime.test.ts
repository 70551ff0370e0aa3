// Shared runtime pieces: JSON logs with context fields, the probe server, graceful shutdown
// ordering, and the `l0` entry point.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { expect } from "chai";
import { Counter } from "prom-client";
import { writeTerminationMessage } from "../../lib/run-main.js";
import { L0Error } from "../../lib/errors.js";
import { createLogger, silentLogger } from "../../lib/log.js";
import { createRegistry, serveProbes } from "../../lib/metrics.js";
import { createShutdown } from "../../lib/shutdown.js";

describe("runtime", () => {
  it("logs JSON lines with component and child context as fields", () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const logger = createLogger({ component: "hub", format: "auto", isTTY: false, stream });
    logger.child({ run: "ns/qa", episode: "e1" }).info("episode leased", { worker: "w1" });
    const rec = JSON.parse(lines[0]!) as Record<string, string>;
    expect(rec).to.include({
      message: "episode leased",
      component: "hub",
      run: "ns/qa",
      episode: "e1",
      worker: "w1",
      level: "info",
    });
  });

  it("serves /metrics, /healthz and /readyz", async () => {
    const registry = createRegistry({ defaultMetrics: false });
    new Counter({ name: "l0_test_total", help: "test", registers: [registry] }).inc(3);
    let reason: string | null = "hub unreachable";
    const probes = await serveProbes({ registry, host: "127.0.0.1", port: 0, readiness: () => reason });
    try {
      const metrics = await (await fetch(`${probes.url}/metrics`)).text();
      expect(metrics).to.match(/^l0_test_total 3$/m);
      expect((await fetch(`${probes.url}/healthz`)).status).to.equal(200);
      const notReady = await fetch(`${probes.url}/readyz`);
      expect([notReady.status, await notReady.text()]).to.deep.equal([503, "hub unreachable\n"]);
      reason = null;
      expect((await fetch(`${probes.url}/readyz`)).status).to.equal(200);
    } finally {
      await probes.close();
    }
  });

  it("runs shutdown hooks last-registered first, bounds each by the grace period, and aborts the signal", async () => {
    const order: string[] = [];
    const sd = createShutdown({ logger: silentLogger(), installSignals: false, graceMs: 200 });
    sd.add("store", () => void order.push("store"));
    sd.add("stuck", () => new Promise<void>(() => order.push("stuck")));
    sd.add("server", async () => void order.push("server"));
    const code = await sd.run("SIGTERM");
    expect(order).to.deep.equal(["server", "stuck", "store"]);
    expect(code).to.equal(1); // the stuck hook timed out
    expect(sd.signal.aborted).to.equal(true);
  });

  it("`l0 --help` prints usage", () => {
    const out = execFileSync(process.execPath, ["bin/l0.js", "--help"], { encoding: "utf8" });
    expect(out).to.contain("Usage: l0");
  });
});

describe("termination message (lib/run-main.ts)", () => {
  it("writes `Reason: message` where Kubernetes mounted the file, and nothing where it did not", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-term-"));
    try {
      const path = join(dir, "termination-log");
      writeTerminationMessage(
        new L0Error("DeadlineExceeded", "v3 late", { reason: "WeightSyncTimeout" }),
        path,
      );
      expect(existsSync(path), "no file is created outside a pod").to.equal(false);
      writeFileSync(path, "");
      writeTerminationMessage(
        new L0Error("DeadlineExceeded", "v3 late", { reason: "WeightSyncTimeout" }),
        path,
      );
      expect(readFileSync(path, "utf8")).to.equal("WeightSyncTimeout: v3 late");
      writeTerminationMessage(new Error("x".repeat(5000)), path);
      expect(readFileSync(path).length).to.equal(4000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
