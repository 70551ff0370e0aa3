// The sidecar's relay of the engine's /metrics (images/inference/engine-metrics.ts), over real HTTP
// servers on port 0: the engine's text comes through unchanged, and an engine that is down, failing
// or hanging gives a 502 that says why while the sidecar's own /metrics keeps working.
import { expect } from "chai";
import http from "node:http";
import { type AddressInfo } from "node:net";
import { createRegistry, serveProbes, type ProbeServer } from "../../lib/metrics.js";
import { ENGINE_METRICS_PATH, engineMetricsRoute } from "../../images/inference/engine-metrics.js";

const VLLM_TEXT = [
  "# HELP vllm:num_requests_running Number of requests in model execution batches.",
  "# TYPE vllm:num_requests_running gauge",
  'vllm:num_requests_running{model_name="qwen"} 3.0',
  "",
].join("\n");

/** An engine stand-in whose /metrics answers as `handler` says. */
async function engine(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function sidecarProbes(engineUrl: string, timeoutMs?: number): Promise<ProbeServer> {
  const registry = createRegistry({ defaultMetrics: false });
  return serveProbes({
    registry,
    host: "127.0.0.1",
    port: 0,
    extra: engineMetricsRoute({ engineUrl, timeoutMs }),
  });
}

describe("sidecar: engine metrics relay", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });

  it("serves the engine's /metrics text unchanged at /engine/metrics", async () => {
    const e = await engine((req, res) => {
      res.writeHead(req.url === "/metrics" ? 200 : 404, { "content-type": "text/plain; version=0.0.4" });
      res.end(req.url === "/metrics" ? VLLM_TEXT : "");
    });
    const p = await sidecarProbes(e.url);
    cleanup.push(e.close, p.close);
    const r = await fetch(p.url + ENGINE_METRICS_PATH);
    expect(r.status).to.equal(200);
    expect(r.headers.get("content-type")).to.match(/^text\/plain/);
    expect(await r.text()).to.equal(VLLM_TEXT);
    // The sidecar's own metrics are still its own.
    expect(await (await fetch(p.url + "/metrics")).text()).not.to.include("vllm:");
  });

  const failures: [string, http.RequestListener | "down", RegExp][] = [
    [
      "the engine answers 500",
      (_q, s) => {
        s.writeHead(500);
        s.end();
      },
      /HTTP 500/,
    ],
    ["the engine hangs past the deadline", () => undefined, /abort|timeout/i],
    ["the engine is not listening", "down", /fetch failed|ECONNREFUSED/],
  ];
  for (const [name, handler, why] of failures) {
    it(`answers 502 with the reason when ${name}`, async () => {
      const e = await engine(handler === "down" ? () => undefined : handler);
      if (handler === "down") await e.close();
      else cleanup.push(e.close);
      const p = await sidecarProbes(e.url, 200);
      cleanup.push(p.close);
      const r = await fetch(p.url + ENGINE_METRICS_PATH);
      expect(r.status).to.equal(502);
      const text = await r.text();
      expect(text).to.include(`${e.url}/metrics`);
      expect(text).to.match(why);
      expect((await fetch(p.url + "/metrics")).status).to.equal(200);
    });
  }

  it("leaves other paths to the probe server (404)", async () => {
    const p = await sidecarProbes("http://127.0.0.1:9");
    cleanup.push(p.close);
    expect((await fetch(p.url + "/engine/other")).status).to.equal(404);
  });
});
