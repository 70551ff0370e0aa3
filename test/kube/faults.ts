// Fault injection for operator tests: fail or delay the next N requests that match, cut open
// watch streams, and (through the server handle) compact history to force 410 Gone.
import { KubeError } from "./errors.js";

/** What a request is, in the terms rules match on. */
export interface RequestInfo {
  verb: string; // get list watch create update patch delete deletecollection
  group: string;
  version: string;
  resource: string; // plural
  subresource?: string;
  namespace?: string;
  name?: string;
  path: string;
}

export interface Match {
  verb?: string | string[];
  resource?: string;
  group?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** Matched against the URL path (without the query). */
  path?: RegExp;
}

interface Rule {
  match: Match;
  remaining: number;
  code?: number;
  delayMs?: number;
}

export function matchesRequest(m: Match, r: RequestInfo): boolean {
  const verbs = m.verb === undefined ? undefined : Array.isArray(m.verb) ? m.verb : [m.verb];
  return (
    (verbs === undefined || verbs.includes(r.verb)) &&
    (m.resource === undefined || m.resource === r.resource) &&
    (m.group === undefined || m.group === r.group) &&
    (m.subresource === undefined || m.subresource === (r.subresource ?? "")) &&
    (m.namespace === undefined || m.namespace === r.namespace) &&
    (m.name === undefined || m.name === r.name) &&
    (m.path === undefined || m.path.test(r.path))
  );
}

/** The Status a real server sends for an injected code. */
export function faultError(code: number, r: RequestInfo): KubeError {
  const details = { name: r.name ?? "", ...(r.group ? { group: r.group } : {}), kind: r.resource };
  switch (code) {
    case 409:
      return new KubeError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${r.group ? `${r.resource}.${r.group}` : r.resource} "${r.name ?? ""}": the object has been modified; please apply your changes to the latest version and try again`,
        details,
      );
    case 404:
      return new KubeError(
        404,
        "NotFound",
        `${r.group ? `${r.resource}.${r.group}` : r.resource} "${r.name ?? ""}" not found`,
        details,
      );
    case 410:
      return new KubeError(410, "Expired", "too old resource version: 1 (2)", {});
    case 429:
      return new KubeError(
        429,
        "TooManyRequests",
        "The server has received too many requests and has asked us to try again later",
        { ...details, retryAfterSeconds: 1 },
        { "Retry-After": "1" },
      );
    case 500:
      return new KubeError(500, "InternalError", "Internal error occurred: injected fault", {
        ...details,
        causes: [{ message: "injected fault" }],
      });
    case 503:
      return new KubeError(
        503,
        "ServiceUnavailable",
        "the server is currently unable to handle the request",
        details,
      );
    case 504:
      return new KubeError(
        504,
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be processing the request",
        details,
      );
    default:
      return new KubeError(code, "Unknown", `injected fault ${code}`, details);
  }
}

export class Faults {
  #rules: Rule[] = [];
  #cutters = new Set<{ info: RequestInfo; cut: () => void }>();
  /** Every request seen, in order (verb + path), for tests that assert what the client did. */
  readonly requests: RequestInfo[] = [];

  /** The next `times` matching requests get `code` (404, 409, 429, 500, 503, 504) instead of running. */
  fail(match: Match, code: number, times = 1): this {
    this.#rules.push({ match, remaining: times, code });
    return this;
  }

  /** The next `times` matching requests wait `ms` before they run. */
  delay(match: Match, ms: number, times = Infinity): this {
    this.#rules.push({ match, remaining: times, delayMs: ms });
    return this;
  }

  /** Ends every open watch stream that matches (the client sees the connection close). */
  cutWatches(match: Match = {}): number {
    let n = 0;
    for (const w of [...this.#cutters])
      if (matchesRequest(match, w.info)) {
        w.cut();
        n++;
      }
    return n;
  }

  /** Open watch streams that match (tests wait for an informer to reconnect with this). */
  openWatches(match: Match = {}): number {
    return [...this.#cutters].filter((w) => matchesRequest(match, w.info)).length;
  }

  clear(): void {
    this.#rules = [];
  }

  /** @internal the server registers each open watch here. */
  trackWatch(info: RequestInfo, cut: () => void): () => void {
    const entry = { info, cut };
    this.#cutters.add(entry);
    return () => this.#cutters.delete(entry);
  }

  /** @internal consulted before each request: a delay to wait and/or an error to return. */
  take(r: RequestInfo): { delayMs: number; error?: KubeError } {
    this.requests.push(r);
    if (this.requests.length > 10_000) this.requests.splice(0, 5_000);
    let delayMs = 0;
    let error: KubeError | undefined;
    for (const rule of this.#rules) {
      if (rule.remaining <= 0 || !matchesRequest(rule.match, r)) continue;
      if (rule.delayMs !== undefined) {
        delayMs += rule.delayMs;
        rule.remaining--;
      } else if (!error && rule.code !== undefined) {
        error = faultError(rule.code, r);
        rule.remaining--;
      }
    }
    this.#rules = this.#rules.filter((x) => x.remaining > 0);
    return error ? { delayMs, error } : { delayMs };
  }
}
