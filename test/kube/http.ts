// The HTTP edge: routes Kubernetes REST paths to the store (get, list, watch, create, update,
// patch, delete, deletecollection, /status, /scale), reads bodies by content type, applies
// injected faults, checks the bearer token and writes every failure as a `Status`.
import { type IncomingMessage, type ServerResponse } from "node:http";
import { parse as parseYaml } from "yaml";
import { type ApplyManager } from "./apply.js";
import { discovery } from "./discovery.js";
import { openapiDocument } from "./openapi.js";
import { badRequest, KubeError, methodNotAllowed, notFoundPath, unsupportedMediaType } from "./errors.js";
import { type Faults, type RequestInfo } from "./faults.js";
import { type FieldValidation } from "./fields.js";
import { type History, matches, type WatchFilter } from "./history.js";
import { jsonPatch, mergePatch, strategicMergePatch } from "./patch.js";
import { type ResourceTable } from "./resources.js";
import { route, verbOf } from "./routes.js";
import { parseFieldSelector, parseLabelSelector } from "./selectors.js";
import { type Propagation, type Store } from "./store.js";
import { applyScale, toScale } from "./scale.js";
import { toTable, wantsTable } from "./table.js";
import { apiVersionOf, clone, type Obj, type ResourceType, typeKey } from "./types.js";
import { type Pager, serveWatch } from "./watch.js";

export interface HttpContext {
  table: ResourceTable;
  store: Store;
  history: History;
  faults: Faults;
  pager: Pager;
  apply: ApplyManager;
  token: string | undefined;
  bookmarkIntervalMs: number;
  serverAddress: () => string;
  /** Ends every open watch (server stop). */
  watchers: Set<() => void>;
}

const MAX_BODY = 3 * 1024 * 1024;
const PATCH_TYPES = [
  "application/json-patch+json",
  "application/merge-patch+json",
  "application/apply-patch+yaml",
];

export function send(
  res: ServerResponse,
  code: number,
  body: unknown,
  headers: Record<string, string | string[]> = {},
): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(code, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown): void {
  const e =
    err instanceof KubeError
      ? err
      : new KubeError(500, "InternalError", `Internal error occurred: ${(err as Error).message}`);
  send(res, e.code, e.status(), e.headers);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY)
      throw new KubeError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728");
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function decode(text: string, contentType: string): unknown {
  try {
    if (/yaml/.test(contentType)) return parseYaml(text);
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body could not be decoded: ${(err as Error).message}`);
  }
}

/** Items of built-in lists carry no kind/apiVersion on a real server; custom ones do. */
function listItem(t: ResourceType, o: Obj): Obj {
  const c = clone(o);
  if (!t.custom) {
    delete c.kind;
    delete c.apiVersion;
  }
  return c;
}

const RETURNS_DELETED = new Set(["Pod", "Service"]);

export function createHandler(ctx: HttpContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(ctx, req, res).catch((err) => sendError(res, err));
  };
}

async function handle(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://localhost");
  const path = url.pathname.replace(/\/+$/, "") || "/";
  const q = url.searchParams;
  if (ctx.token !== undefined && req.headers.authorization !== `Bearer ${ctx.token}`)
    throw new KubeError(401, "Unauthorized", "Unauthorized");
  if (path === "/healthz" || path === "/readyz" || path === "/livez") {
    res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    return;
  }
  if (path === "/openapi/v2" || path === "/openapi/v3" || path.startsWith("/openapi/v3/")) {
    const doc = req.method === "GET" ? openapiDocument(ctx.table, path) : undefined;
    if (!doc) throw notFoundPath();
    // client-go's OpenAPISchema() asks for protobuf only; a JSON-only server answers 406.
    const accept = String(req.headers.accept ?? "*/*");
    if (!/application\/json|\*\/\*/.test(accept))
      throw new KubeError(
        406,
        "NotAcceptable",
        `only the following media types are accepted: application/json`,
      );
    send(res, 200, doc);
    return;
  }
  const r = route(ctx.table, path);
  if (r === undefined || r === "discovery" || path === "/version") {
    const doc = req.method === "GET" ? discovery(ctx.table, path, ctx.serverAddress()) : undefined;
    if (!doc) throw notFoundPath();
    send(res, 200, doc);
    return;
  }
  const verb = verbOf(req.method ?? "GET", r, q);
  const info: RequestInfo = {
    verb,
    group: r.t.group,
    version: r.t.version,
    resource: r.t.plural,
    path,
    ...(r.subresource ? { subresource: r.subresource } : {}),
    ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
    ...(r.name ? { name: r.name } : {}),
  };
  const fault = ctx.faults.take(info);
  if (fault.delayMs > 0) await new Promise((ok) => setTimeout(ok, fault.delayMs));
  if (fault.error && fault.error.code === 410 && verb === "watch") {
    // A real server reports an expired watch inside a 200 stream, as one ERROR event.
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ type: "ERROR", object: fault.error.status() }) + "\n");
    return;
  }
  if (fault.error) throw fault.error;
  if (
    r.subresource &&
    !((r.subresource === "status" && r.t.status) || (r.subresource === "scale" && r.t.scale))
  )
    throw notFoundPath();
  const ns = r.namespace ?? "";
  const { t } = r;
  const dryRun = q.get("dryRun") === "All";
  const filter = (): WatchFilter => ({
    type: t,
    ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
    labels: parseLabelSelector(q.get("labelSelector")),
    fields: [
      ...parseFieldSelector(q.get("fieldSelector"), t.kind),
      ...(r.name ? [{ field: "metadata.name", op: "=" as const, value: r.name }] : []),
    ],
  });
  switch (verb) {
    case "get": {
      const o = ctx.store.get(t, ns, r.name!);
      const crd = t.custom && !r.subresource && wantsTable(req.headers.accept) ? crdOf(ctx, t) : undefined;
      if (crd) send(res, 200, toTable(crd, t.version, [o], o.metadata.resourceVersion, ctx.store.now()));
      else send(res, 200, r.subresource === "scale" ? toScale(t, o) : o);
      return;
    }
    case "list": {
      const f = filter();
      const rvParam = q.get("resourceVersion");
      const exact = q.get("resourceVersionMatch") === "Exact";
      let at = ctx.store.resourceVersion;
      if (rvParam && rvParam !== "0") {
        const n = Number(rvParam);
        if (!Number.isInteger(n) || n < 0) throw badRequest(`invalid resource version: ${rvParam}`);
        if (n > at)
          throw new KubeError(504, "Timeout", `Too large resource version: ${n}, current: ${at}`, {
            causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
            retryAfterSeconds: 1,
          });
        if (exact) at = n;
      } else if (exact) throw badRequest("resourceVersionMatch=Exact requires a resourceVersion");
      // NotOlderThan (and unset or "0") are served from the latest state, which satisfies them.
      const source = exact
        ? ctx.history
            .stateAt(at, typeKey(t), ctx.store.list(t))
            .filter((o) => !t.namespaced || r.namespace === undefined || o.metadata.namespace === r.namespace)
        : ctx.store.list(t, r.namespace);
      const all = source.filter((o) => matches(f, o));
      const limit = q.get("limit") ? Number(q.get("limit")) : undefined;
      const page = ctx.pager.page(all, at, ctx.history.compacted, limit, q.get("continue") ?? undefined);
      const crd = t.custom && wantsTable(req.headers.accept) ? crdOf(ctx, t) : undefined;
      if (crd) {
        send(res, 200, {
          ...toTable(crd, t.version, page.items, String(page.rv), ctx.store.now()),
          ...(page.continue
            ? {
                metadata: {
                  resourceVersion: String(page.rv),
                  continue: page.continue,
                  remainingItemCount: page.remaining,
                },
              }
            : {}),
        });
        return;
      }
      send(res, 200, {
        kind: t.listKind,
        apiVersion: apiVersionOf(t),
        metadata: {
          resourceVersion: String(page.rv),
          ...(page.continue ? { continue: page.continue, remainingItemCount: page.remaining } : {}),
        },
        items: page.items.map((o) => listItem(t, o)),
      });
      return;
    }
    case "watch": {
      const timeout = q.get("timeoutSeconds");
      serveWatch(
        req,
        res,
        info,
        filter(),
        {
          ...(q.get("resourceVersion") ? { resourceVersion: q.get("resourceVersion")! } : {}),
          allowWatchBookmarks: q.get("allowWatchBookmarks") === "true",
          sendInitialEvents: q.get("sendInitialEvents") === "true",
          ...(timeout ? { timeoutSeconds: Number(timeout) } : {}),
          bookmarkIntervalMs: ctx.bookmarkIntervalMs,
        },
        ctx,
      );
      return;
    }
  }
  if (verb === "create" && (r.name || r.subresource)) throw methodNotAllowed();
  if (verb === "create" && t.namespaced && r.namespace === undefined) throw methodNotAllowed();
  const contentType = String(req.headers["content-type"] ?? "application/json")
    .split(";")[0]!
    .trim();
  const manager = q.get("fieldManager") ?? defaultManager(req);
  if (q.get("force") !== null && contentType !== "application/apply-patch+yaml")
    throw new KubeError(422, "Invalid", "force: Forbidden: may not be specified for non-apply patch");
  const text = await readBody(req);
  const warnings: string[] = [];
  const fv = q.get("fieldValidation");
  if (fv !== null && !["Strict", "Warn", "Ignore"].includes(fv))
    throw badRequest(`fieldValidation must be one of "Ignore", "Strict" or "Warn", got "${fv}"`);
  const w = { manager, warnings, ...(fv ? { fieldValidation: fv as FieldValidation } : {}) };
  // Unknown fields dropped from the body come back as Warning headers, as on a real server.
  const reply = (code: number, body: unknown): void =>
    send(
      res,
      code,
      body,
      warnings.length ? { Warning: warnings.map((x) => `299 - ${JSON.stringify(x)}`) } : {},
    );
  switch (verb) {
    case "create":
    case "update": {
      if (!/^application\/(json|yaml)$/.test(contentType))
        // A real server also decodes protobuf; this one does not, so it does not list it.
        throw unsupportedMediaType(["application/json", "application/yaml"]);
      const body = decode(text, contentType);
      if (verb === "create") {
        reply(201, ctx.store.create(t, ns, body, { dryRun, ...w }));
        return;
      }
      if (r.subresource === "scale") {
        send(res, 200, applyScale(ctx.store, t, ns, r.name!, body, manager));
        return;
      }
      const sub = r.subresource === "status" ? { subresource: "status" as const } : {};
      reply(200, ctx.store.update(t, ns, r.name!, body, { ...sub, dryRun, ...w }));
      return;
    }
    case "patch": {
      const accepted = t.custom ? PATCH_TYPES : [...PATCH_TYPES, "application/strategic-merge-patch+json"];
      if (!accepted.includes(contentType)) throw unsupportedMediaType(accepted);
      const patch = decode(text, contentType);
      if (contentType === "application/apply-patch+yaml") {
        const out = ctx.apply.apply(t, ns, r.name!, patch, {
          fieldManager: q.get("fieldManager") ?? "",
          force: q.get("force") === "true",
          dryRun,
          ...(r.subresource ? { subresource: r.subresource } : {}),
        });
        send(res, out.created ? 201 : 200, out.object);
        return;
      }
      const current = ctx.store.get(t, ns, r.name!);
      const base = r.subresource === "scale" ? toScale(t, current) : current;
      let patched: Obj;
      if (contentType === "application/json-patch+json") patched = jsonPatch(base, patch);
      else if (contentType === "application/merge-patch+json") patched = mergePatch(base, patch) as Obj;
      else patched = strategicMergePatch(base, patch);
      if (r.subresource === "scale") {
        send(res, 200, applyScale(ctx.store, t, ns, r.name!, patched, manager));
        return;
      }
      const sub = r.subresource === "status" ? { subresource: "status" as const } : {};
      reply(200, ctx.store.update(t, ns, r.name!, patched, { ...sub, dryRun, ...w }));
      return;
    }
    case "delete":
    case "deletecollection": {
      const opts = (text.trim() ? decode(text, "application/json") : {}) as Obj;
      const qp = q.get("propagationPolicy") as Propagation | null;
      let policy = (opts.propagationPolicy ?? qp ?? undefined) as Propagation | undefined;
      const orphan =
        opts.orphanDependents ??
        (q.get("orphanDependents") === null ? undefined : q.get("orphanDependents") === "true");
      if (policy === undefined && orphan !== undefined) policy = orphan ? "Orphan" : "Background";
      if (policy !== undefined && !["Background", "Foreground", "Orphan"].includes(policy))
        throw new KubeError(
          422,
          "Invalid",
          `DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "${String(policy)}": supported values: "Foreground", "Background", "Orphan"`,
        );
      if (verb === "deletecollection") {
        const f = filter();
        for (const o of ctx.store.list(t, r.namespace).filter((x) => matches(f, x)))
          if (!dryRun)
            ctx.store.delete(
              t,
              o.metadata.namespace ?? "",
              o.metadata.name,
              policy ? { propagationPolicy: policy } : {},
            );
        send(res, 200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success" });
        return;
      }
      if (dryRun) {
        send(res, 200, ctx.store.get(t, ns, r.name!));
        return;
      }
      const grace = opts.gracePeriodSeconds ?? q.get("gracePeriodSeconds") ?? undefined;
      const { object, gone } = ctx.store.delete(t, ns, r.name!, {
        ...(policy ? { propagationPolicy: policy } : {}),
        ...(grace !== undefined && grace !== null ? { gracePeriodSeconds: Number(grace) } : {}),
        ...(opts.preconditions ? { preconditions: opts.preconditions } : {}),
      });
      if (!gone || t.custom || RETURNS_DELETED.has(t.kind)) {
        send(res, 200, object);
        return;
      }
      send(res, 200, {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Success",
        details: {
          name: r.name,
          ...(t.group ? { group: t.group } : {}),
          kind: t.plural,
          uid: object.metadata.uid,
        },
      });
      return;
    }
  }
  throw methodNotAllowed();
}

function crdOf(ctx: HttpContext, t: ResourceType): Obj | undefined {
  return ctx.table.crds.find((c) => c.kind === t.kind && c.group === t.group)?.crd;
}

function defaultManager(req: IncomingMessage): string {
  return String(req.headers["user-agent"] ?? "unknown").split("/")[0] ?? "unknown";
}
