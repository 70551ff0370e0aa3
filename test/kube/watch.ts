// Watch streams and paginated lists: the replay from a resourceVersion (410 Gone as an ERROR
// event when it was compacted), synthetic ADDED events for a fresh watch, bookmarks, timeouts;
// and limit/continue lists served from a snapshot taken at the first page, as etcd does.
import { type IncomingMessage, type ServerResponse } from "node:http";
import { gone, KubeError } from "./errors.js";
import { type Faults, type RequestInfo } from "./faults.js";
import { type History, matches, type WatchFilter, type Watcher } from "./history.js";
import { type Store } from "./store.js";
import { apiVersionOf, clone, type Obj } from "./types.js";

export interface WatchOptions {
  resourceVersion?: string;
  allowWatchBookmarks: boolean;
  sendInitialEvents: boolean;
  timeoutSeconds?: number;
  bookmarkIntervalMs: number;
}

/** Streams a watch on `res` until the client goes, the timeout passes or a fault cuts it. */
export function serveWatch(
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  filter: WatchFilter,
  opts: WatchOptions,
  deps: { store: Store; history: History; faults: Faults; watchers: Set<() => void> },
): void {
  const { store, history } = deps;
  const t = filter.type;
  let from: number | undefined;
  if (opts.resourceVersion && opts.resourceVersion !== "0") {
    from = Number(opts.resourceVersion);
    if (!Number.isInteger(from) || from < 0)
      throw new KubeError(400, "BadRequest", `invalid resource version: ${opts.resourceVersion}`);
    if (from > store.resourceVersion)
      throw new KubeError(
        504,
        "Timeout",
        `Too large resource version: ${from}, current: ${store.resourceVersion}`,
        {
          causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
          retryAfterSeconds: 1,
        },
      );
  }
  res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private" });
  // Clients resolve the watch call on the headers: send them before the first event.
  res.flushHeaders();
  const write = (type: string, object: Obj): void => {
    if (!res.writableEnded) res.write(JSON.stringify({ type, object }) + "\n");
  };
  const bookmark = (initialEnd = false): void =>
    write("BOOKMARK", {
      kind: t.kind,
      apiVersion: apiVersionOf(t),
      metadata: {
        resourceVersion: String(store.resourceVersion),
        ...(initialEnd ? { annotations: { "k8s.io/initial-events-end": "true" } } : {}),
      },
    });
  if (from !== undefined) {
    try {
      for (const ev of history.since(from, filter)) write(ev.type, ev.object);
    } catch (err) {
      if (!(err instanceof KubeError)) throw err;
      write("ERROR", err.status());
      res.end();
      return;
    }
  } else {
    for (const o of store.list(t, filter.namespace)) if (matches(filter, o)) write("ADDED", clone(o));
    if (opts.sendInitialEvents && opts.allowWatchBookmarks) bookmark(true);
  }
  const timers: NodeJS.Timeout[] = [];
  let untrack = (): void => {};
  const end = (): void => {
    history.watchers.delete(watcher);
    deps.watchers.delete(end);
    for (const x of timers) clearTimeout(x);
    untrack();
    if (!res.writableEnded) res.end();
  };
  const watcher: Watcher = { filter, send: write, bookmarks: opts.allowWatchBookmarks, close: end };
  history.watchers.add(watcher);
  deps.watchers.add(end);
  untrack = deps.faults.trackWatch(info, end);
  if (opts.allowWatchBookmarks) timers.push(setInterval(() => bookmark(), opts.bookmarkIntervalMs));
  if (opts.timeoutSeconds && opts.timeoutSeconds > 0)
    timers.push(setTimeout(end, opts.timeoutSeconds * 1000));
  req.on("close", end);
  res.on("close", end);
}

/** Sends a BOOKMARK now on every watch that asked for them. */
export function bookmarkAll(history: History, rv: number): void {
  for (const w of history.watchers)
    if (w.bookmarks)
      w.send("BOOKMARK", {
        kind: w.filter.type.kind,
        apiVersion: apiVersionOf(w.filter.type),
        metadata: { resourceVersion: String(rv) },
      });
}

const EXPIRED =
  "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/** Snapshots behind continue tokens: a list's later pages see the state of its first page. */
export class Pager {
  #snapshots = new Map<number, Obj[]>();
  #next = 0;

  page(
    items: Obj[],
    rv: number,
    compacted: number,
    limit: number | undefined,
    token: string | undefined,
  ): { items: Obj[]; rv: number; continue?: string; remaining?: number } {
    let start = 0;
    let id: number | undefined;
    if (token) {
      let parsed: { v?: string; rv: number; start: number; id: number };
      try {
        parsed = JSON.parse(Buffer.from(token, "base64").toString("utf8"));
      } catch {
        throw new KubeError(400, "BadRequest", "continue key is not valid: illegal base64 data");
      }
      const snap = this.#snapshots.get(parsed.id);
      if (!snap || parsed.rv < compacted) throw gone(EXPIRED);
      items = snap;
      rv = parsed.rv;
      start = parsed.start;
      id = parsed.id;
    }
    if (!limit || limit <= 0 || start + limit >= items.length) {
      if (id !== undefined) this.#snapshots.delete(id);
      return { items: items.slice(start), rv };
    }
    if (id === undefined) {
      id = ++this.#next;
      this.#snapshots.set(id, items.map(clone));
      if (this.#snapshots.size > 32) this.#snapshots.delete(this.#snapshots.keys().next().value!);
    }
    const next = start + limit;
    const cont = Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv, start: next, id })).toString("base64");
    return { items: items.slice(start, next), rv, continue: cont, remaining: items.length - next };
  }
}
