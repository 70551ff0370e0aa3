// Relays the inference engine's Prometheus metrics (vLLM's /metrics; SGLang's with
// --enable-metrics) on the sidecar's metrics port. The engine's own port is open only to the run's
// workers (its reload route is unauthenticated: buildInferenceNetworkPolicy), so the chart's engine
// PodMonitor reads the engine through here, on the port the policy already opens for scraping.
import type http from "node:http";

/** Path of the relay on the sidecar's metrics port; the chart's engine PodMonitor scrapes it. */
export const ENGINE_METRICS_PATH = "/engine/metrics";
/** Deadline of one relayed scrape: under the chart's default scrapeTimeout (10s). */
export const ENGINE_METRICS_TIMEOUT_MS = 5_000;

export interface EngineMetricsOptions {
  /** Base URL of the engine, e.g. http://127.0.0.1:8000. */
  engineUrl: string;
  timeoutMs?: number;
}

/** A `serveProbes` extra route: GET /engine/metrics answers with the engine's /metrics, or 502. */
export function engineMetricsRoute(
  opts: EngineMetricsOptions,
): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  return (req, res) => {
    if ((req.url ?? "/").split("?")[0] !== ENGINE_METRICS_PATH || req.method !== "GET") return false;
    void relay(opts, res);
    return true;
  };
}

async function relay(opts: EngineMetricsOptions, res: http.ServerResponse): Promise<void> {
  const url = `${opts.engineUrl.replace(/\/$/, "")}/metrics`;
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? ENGINE_METRICS_TIMEOUT_MS) });
    const body = await r.text();
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    res.writeHead(200, { "content-type": r.headers.get("content-type") ?? "text/plain; version=0.0.4" });
    res.end(body);
  } catch (err) {
    // 502: Prometheus marks the target down (up == 0) and says why; the sidecar's own metrics stay up.
    res.writeHead(502, { "content-type": "text/plain" });
    res.end(`engine metrics from ${url} unavailable: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}
