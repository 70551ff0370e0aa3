// Prometheus registry factory and the small HTTP server every program exposes:
// /metrics, /healthz (the process is alive) and /readyz (it can do its job now).
import http from "node:http";
import { type AddressInfo } from "node:net";
import { Registry, collectDefaultMetrics } from "prom-client";

export interface RegistryOptions {
  /** Adds prom-client's process_* and nodejs_* metrics. Default true. */
  defaultMetrics?: boolean;
  /** Labels on every series, e.g. `{ component: "hub" }`. Keep them bounded. */
  labels?: Record<string, string>;
}

export function createRegistry(opts: RegistryOptions = {}): Registry {
  const registry = new Registry();
  if (opts.labels) registry.setDefaultLabels(opts.labels);
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

export interface ProbeServerOptions {
  registry: Registry;
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Returns null when ready, or the reason it is not. Default: always ready. */
  readiness?: () => string | null;
  /** Extra routes, e.g. a worker's `/episodes`. Return false to fall through to 404. */
  extra?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
}

export interface ProbeServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function serveProbes(opts: ProbeServerOptions): Promise<ProbeServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      opts.registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { "content-type": opts.registry.contentType });
          res.end(body);
        })
        .catch((err: unknown) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(String(err));
        });
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
      return;
    }
    if (path === "/readyz") {
      const reason = opts.readiness?.() ?? null;
      res.writeHead(reason === null ? 200 : 503, { "content-type": "text/plain" });
      res.end(reason === null ? "ok\n" : reason + "\n");
      return;
    }
    if (opts.extra?.(req, res)) return;
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "0.0.0.0", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? "0.0.0.0";
  return {
    port,
    url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
