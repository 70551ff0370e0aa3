// The operator's thin client for the Kubernetes REST API: typed paths for the kinds it owns, CRUD,
// JSON merge patch, the status subresource and watch streams, over node:http(s) with the auth and
// TLS from a client-node KubeConfig. No discovery calls: every kind it touches is in RESOURCES.
import http from "node:http";
import https from "node:https";
import { createInterface } from "node:readline";
import { type KubeConfig, type KubernetesObject } from "@kubernetes/client-node";

export interface Resource {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

const R = (group: string, version: string, kind: string, plural: string, namespaced = true): Resource => ({
  group,
  version,
  kind,
  plural,
  namespaced,
});

/** Every kind the operator reads or writes, keyed by kind. */
export const RESOURCES = {
  TrainingRun: R("l0.dev", "v1alpha1", "TrainingRun", "trainingruns"),
  AgentWorkerPool: R("l0.dev", "v1alpha1", "AgentWorkerPool", "agentworkerpools"),
  Secret: R("", "v1", "Secret", "secrets"),
  ConfigMap: R("", "v1", "ConfigMap", "configmaps"),
  PersistentVolumeClaim: R("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
  Service: R("", "v1", "Service", "services"),
  ServiceAccount: R("", "v1", "ServiceAccount", "serviceaccounts"),
  Event: R("", "v1", "Event", "events"),
  Job: R("batch", "v1", "Job", "jobs"),
  Deployment: R("apps", "v1", "Deployment", "deployments"),
  NetworkPolicy: R("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
  PodDisruptionBudget: R("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets"),
  Lease: R("coordination.k8s.io", "v1", "Lease", "leases"),
  // Listed (never watched) and annotated only: the worker pods' deletion cost before a scale-down.
  Pod: R("", "v1", "Pod", "pods"),
} as const;
export type Kind = keyof typeof RESOURCES;

export const apiVersionOf = (r: Resource): string => (r.group ? `${r.group}/${r.version}` : r.version);

/** REST path of a collection (name undefined) or an object, optionally a subresource. */
export function resourcePath(r: Resource, namespace?: string, name?: string, sub?: string): string {
  let p = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  if (r.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${r.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (sub) p += `/${sub}`;
  return p;
}

/** One field the API server refused (a 422's `details.causes`). */
export interface ApiCause {
  field?: string;
  message?: string;
  reason?: string;
}

/** A non-2xx answer; `code` is the HTTP status (409 conflict, 404 not found, 410 gone...). */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    /** The Status's own message (without the request line) and causes, when it had them. */
    readonly status: { message?: string; causes?: ApiCause[] } = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}
export const isStatus = (err: unknown, code: number): boolean => err instanceof ApiError && err.code === code;

export interface List<T> {
  items: T[];
  metadata: { resourceVersion?: string };
}
export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}
export interface WatchHandle {
  /** Resolves when the stream ends, with the error that ended it (undefined = closed cleanly). */
  done: Promise<Error | undefined>;
  stop(): void;
}

/** What the reconcilers and informers need from the API; the REST class below is the real one. */
export interface KubeApi {
  get<T extends KubernetesObject>(kind: Kind, ns: string, name: string): Promise<T>;
  list<T extends KubernetesObject>(
    kind: Kind,
    ns?: string,
    opts?: { labelSelector?: string },
  ): Promise<List<T>>;
  create<T extends KubernetesObject>(kind: Kind, obj: T): Promise<T>;
  /** PUT with the object's resourceVersion: a stale write is a 409. */
  replace<T extends KubernetesObject>(kind: Kind, obj: T): Promise<T>;
  mergePatch<T extends KubernetesObject>(kind: Kind, ns: string, name: string, patch: unknown): Promise<T>;
  replaceStatus<T extends KubernetesObject>(kind: Kind, obj: T): Promise<T>;
  delete(
    kind: Kind,
    ns: string,
    name: string,
    opts?: { propagation?: "Background" | "Foreground" },
  ): Promise<void>;
  watch<T extends KubernetesObject>(
    kind: Kind,
    ns: string | undefined,
    resourceVersion: string,
    onEvent: (e: WatchEvent<T>) => void,
    opts?: { labelSelector?: string },
  ): WatchHandle;
}

/** Who the operator's writes are recorded as (managedFields) and how it introduces itself. */
export const FIELD_MANAGER = "l0-operator";

export interface RestOptions {
  kubeConfig: KubeConfig;
  /** fieldManager of every create, update and patch (default FIELD_MANAGER, never "unknown"). */
  fieldManager?: string;
  /** Deadline of every non-watch request. */
  timeoutMs?: number;
  /** Called once per request, for the bench's request counts. */
  onRequest?: (method: string, path: string) => void;
}

/** KubeApi over HTTP(S) with the KubeConfig's server, credentials and TLS. */
export class RestKubeApi implements KubeApi {
  readonly #kc: KubeConfig;
  readonly #server: URL;
  readonly #timeoutMs: number;
  readonly #onRequest?: (method: string, path: string) => void;
  readonly #manager: string;
  #agent: http.Agent | undefined;

  constructor(opts: RestOptions) {
    this.#kc = opts.kubeConfig;
    const cluster = this.#kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    this.#server = new URL(cluster.server);
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#onRequest = opts.onRequest;
    this.#manager = opts.fieldManager ?? FIELD_MANAGER;
  }

  /** A write's path with its fieldManager. */
  #write(path: string): string {
    return `${path}${path.includes("?") ? "&" : "?"}fieldManager=${encodeURIComponent(this.#manager)}`;
  }

  async #options(
    method: string,
    path: string,
    headers: Record<string, string>,
    pooled = true,
  ): Promise<https.RequestOptions> {
    const opts: https.RequestOptions = {
      method,
      headers: { accept: "application/json", "user-agent": `${this.#manager}/v1`, ...headers },
    };
    await this.#kc.applyToHTTPSOptions(opts);
    // Requests share one keep-alive agent (client-node builds a fresh one per call); a watch holds
    // its connection for minutes, so it keeps client-node's own agent and never starves the pool.
    const proto = this.#server.protocol === "https:" ? https : http;
    this.#agent ??= new proto.Agent({ ...(opts as https.AgentOptions), keepAlive: true, maxSockets: 16 });
    const base = this.#server.pathname.replace(/\/$/, "");
    return {
      ...opts,
      agent: pooled ? this.#agent : opts.agent,
      protocol: this.#server.protocol,
      hostname: this.#server.hostname,
      port: this.#server.port,
      path: base + path,
    };
  }

  async #request<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<T> {
    this.#onRequest?.(method, path);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = payload
      ? { "content-type": contentType, "content-length": String(Buffer.byteLength(payload)) }
      : {};
    const opts = await this.#options(method, path, headers);
    const mod = this.#server.protocol === "https:" ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = mod.request({ ...opts, timeout: this.#timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            parsed = { message: text };
          }
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) resolve(parsed as T);
          else {
            const st = parsed as { reason?: string; message?: string; details?: { causes?: ApiCause[] } };
            reject(
              new ApiError(
                code,
                st.reason ?? String(code),
                `${method} ${path}: ${code} ${st.message ?? text}`,
                {
                  ...(st.message ? { message: st.message } : {}),
                  ...(st.details?.causes ? { causes: st.details.causes } : {}),
                },
              ),
            );
          }
        });
      });
      req.on("timeout", () =>
        req.destroy(new Error(`${method} ${path}: timed out after ${this.#timeoutMs} ms`)),
      );
      req.on("error", reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  get<T extends KubernetesObject>(kind: Kind, ns: string, name: string): Promise<T> {
    return this.#request("GET", resourcePath(RESOURCES[kind], ns, name));
  }
  list<T extends KubernetesObject>(
    kind: Kind,
    ns?: string,
    opts: { labelSelector?: string } = {},
  ): Promise<List<T>> {
    const query = opts.labelSelector ? `?labelSelector=${encodeURIComponent(opts.labelSelector)}` : "";
    return this.#request("GET", resourcePath(RESOURCES[kind], ns) + query);
  }
  create<T extends KubernetesObject>(kind: Kind, obj: T): Promise<T> {
    return this.#request("POST", this.#write(resourcePath(RESOURCES[kind], obj.metadata?.namespace)), obj);
  }
  replace<T extends KubernetesObject>(kind: Kind, obj: T): Promise<T> {
    const path = resourcePath(RESOURCES[kind], obj.metadata?.namespace, obj.metadata?.name);
    return this.#request("PUT", this.#write(path), obj);
  }
  mergePatch<T extends KubernetesObject>(kind: Kind, ns: string, name: string, patch: unknown): Promise<T> {
    const path = this.#write(resourcePath(RESOURCES[kind], ns, name));
    return this.#request("PATCH", path, patch, "application/merge-patch+json");
  }
  replaceStatus<T extends KubernetesObject>(kind: Kind, obj: T): Promise<T> {
    const path = resourcePath(RESOURCES[kind], obj.metadata?.namespace, obj.metadata?.name, "status");
    return this.#request("PUT", this.#write(path), obj);
  }
  async delete(
    kind: Kind,
    ns: string,
    name: string,
    opts: { propagation?: "Background" | "Foreground" } = {},
  ) {
    const body = {
      kind: "DeleteOptions",
      apiVersion: "v1",
      propagationPolicy: opts.propagation ?? "Background",
    };
    await this.#request("DELETE", resourcePath(RESOURCES[kind], ns, name), body);
  }

  watch<T extends KubernetesObject>(
    kind: Kind,
    ns: string | undefined,
    resourceVersion: string,
    onEvent: (e: WatchEvent<T>) => void,
    opts: { labelSelector?: string } = {},
  ): WatchHandle {
    const selector = opts.labelSelector ? `&labelSelector=${encodeURIComponent(opts.labelSelector)}` : "";
    const query = `?watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(resourceVersion)}${selector}`;
    const path = resourcePath(RESOURCES[kind], ns) + query;
    let req: http.ClientRequest | undefined;
    let stopped = false;
    const done = (async (): Promise<Error | undefined> => {
      this.#onRequest?.("WATCH", path);
      const opts = await this.#options("GET", path, {}, false);
      const mod = this.#server.protocol === "https:" ? https : http;
      return new Promise<Error | undefined>((resolve) => {
        if (stopped) return resolve(undefined);
        req = mod.request(opts, (res) => {
          if ((res.statusCode ?? 0) !== 200) {
            res.resume();
            return resolve(
              new ApiError(res.statusCode ?? 0, "WatchFailed", `watch ${path}: ${res.statusCode}`),
            );
          }
          const lines = createInterface({ input: res });
          // readline re-emits the stream's errors; the response's own handler below reports them.
          lines.on("error", () => undefined);
          lines.on("line", (line) => {
            if (!line.trim()) return;
            try {
              onEvent(JSON.parse(line) as WatchEvent<T>);
            } catch (err) {
              req?.destroy(err as Error);
            }
          });
          res.on("close", () => resolve(undefined));
          res.on("error", (err) => resolve(stopped ? undefined : err));
        });
        req.on("error", (err) => resolve(stopped ? undefined : err));
        req.end();
      });
    })();
    return {
      done,
      stop: () => {
        stopped = true;
        req?.destroy();
      },
    };
  }
}
