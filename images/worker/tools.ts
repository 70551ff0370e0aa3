// Tool backends the worker runs on the kernel's behalf (search, read). Credentials and network
// live here, in the worker; the kernel only ever sees the text these return.
import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import MiniSearch from "minisearch";
import { invalidField } from "../../lib/errors.js";

export interface ToolBackend {
  search(query: string): Promise<string>;
  read(idOrUrl: string): Promise<string>;
}

const MAX_READ_CHARS = 8000;
const RESULTS = 5;

interface Doc {
  id: string;
  title: string;
  text: string;
  url?: string;
}

/** Parses a JSONL corpus ({id, title?, text, url?} per line); a bad line fails naming it. */
export function parseCorpus(text: string, source: string): Doc[] {
  const docs: Doc[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw invalidField(`${source}:${i + 1}`, "not valid JSON");
    }
    if (typeof o.text !== "string") throw invalidField(`${source}:${i + 1}.text`, "must be a string");
    const id = typeof o.id === "string" || typeof o.id === "number" ? String(o.id) : `line-${i + 1}`;
    docs.push({
      id,
      title: typeof o.title === "string" ? o.title : "",
      text: o.text,
      url: typeof o.url === "string" ? o.url : undefined,
    });
  });
  return docs;
}

/** Offline search over a JSONL corpus, ranked by minisearch (BM25 with prefix and fuzzy terms). */
export class LocalCorpus implements ToolBackend {
  readonly #index: MiniSearch<Doc>;
  readonly #byKey = new Map<string, Doc>();

  constructor(docs: Doc[]) {
    this.#index = new MiniSearch<Doc>({
      fields: ["title", "text"],
      storeFields: ["id"],
      searchOptions: { boost: { title: 2 }, prefix: true, fuzzy: 0.2 },
    });
    const unique = docs.filter((d) => !this.#byKey.has(d.id) && this.#byKey.set(d.id, d));
    this.#index.addAll(unique);
    for (const d of unique) if (d.url) this.#byKey.set(d.url, d);
  }

  static fromFile(path: string): LocalCorpus {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw invalidField("--search-corpus", `cannot read ${path}: ${(err as Error).message}`);
    }
    return new LocalCorpus(parseCorpus(text, path));
  }

  search(query: string): Promise<string> {
    const hits = this.#index.search(query).slice(0, RESULTS);
    if (hits.length === 0) return Promise.resolve(`no results for ${JSON.stringify(query)}`);
    return Promise.resolve(
      hits
        .map((h, i) => {
          const d = this.#byKey.get(String(h.id))!;
          return `${i + 1}. [${d.id}] ${d.title}\n   ${d.text.slice(0, 300)}`;
        })
        .join("\n"),
    );
  }

  read(idOrUrl: string): Promise<string> {
    const d = this.#byKey.get(idOrUrl.trim());
    if (!d) return Promise.reject(new Error(`no document ${JSON.stringify(idOrUrl)}`));
    return Promise.resolve(`${d.title}\n\n${d.text}`.slice(0, MAX_READ_CHARS));
  }
}

/** A Serper-compatible search API (`POST {url}/search` with X-API-KEY), and plain HTTP GET for read. */
export class HttpSearch implements ToolBackend {
  constructor(
    private readonly opts: {
      url: string;
      apiKey: string;
      timeoutMs: number;
      fetch?: typeof fetch;
      /** Rejects hosts read() must not fetch; default: anything resolving to a non-public address. */
      checkHost?: (host: string) => Promise<void>;
    },
  ) {}

  async search(query: string): Promise<string> {
    const f = this.opts.fetch ?? fetch;
    const res = await f(this.opts.url.replace(/\/$/, "") + "/search", {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": this.opts.apiKey },
      body: JSON.stringify({ q: query, num: RESULTS }),
      signal: AbortSignal.timeout(this.opts.timeoutMs),
    });
    if (!res.ok) throw new Error(`search API answered ${res.status}`);
    const body = (await res.json()) as { organic?: { title?: string; link?: string; snippet?: string }[] };
    const hits = (body.organic ?? []).slice(0, RESULTS);
    if (hits.length === 0) return `no results for ${JSON.stringify(query)}`;
    return hits
      .map((h, i) => `${i + 1}. [${h.link ?? ""}] ${h.title ?? ""}\n   ${h.snippet ?? ""}`)
      .join("\n");
  }

  async read(url: string): Promise<string> {
    if (!/^https?:\/\//.test(url)) throw new Error("read needs an http(s) URL");
    // The worker fetches from inside the cluster: agent-chosen URLs must not reach it.
    await (this.opts.checkHost ?? assertPublicHost)(new URL(url).hostname);
    const f = this.opts.fetch ?? fetch;
    const res = await f(url, { signal: AbortSignal.timeout(this.opts.timeoutMs), redirect: "follow" });
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    const html = (await res.text()).slice(0, 2_000_000);
    return htmlToText(html).slice(0, MAX_READ_CHARS);
  }
}

/** True for loopback, private, link-local (cloud metadata), CGNAT, multicast and unspecified addresses. */
export function isNonPublicAddress(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) {
    const [a, b] = ip.split(".").map(Number) as [number, number];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b < 128) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b < 32) ||
      (a === 192 && b === 168) ||
      a >= 224
    );
  }
  if (v === 6) {
    const x = ip.toLowerCase();
    if (x.startsWith("::ffff:")) return isNonPublicAddress(x.slice(7));
    return x === "::" || x === "::1" || /^f[cd]/.test(x) || /^fe[89ab]/.test(x) || x.startsWith("ff");
  }
  return true;
}

/**
 * Resolves a host and refuses it when any address is not public. A DNS answer that changes
 * between this check and the fetch (rebinding) is not covered: the pool's NetworkPolicy egress
 * rules are the enforcing layer; this check keeps honest mistakes and simple SSRF out.
 */
export async function assertPublicHost(host: string): Promise<void> {
  const h = host.replace(/^\[|\]$/g, "");
  const addrs = isIP(h) ? [h] : (await lookup(h, { all: true })).map((a) => a.address);
  if (addrs.length === 0 || addrs.some(isNonPublicAddress))
    throw new Error(`read refuses ${host}: it resolves to a private or local address`);
}

/** Crude but bounded: scripts and styles out, tags out, whitespace collapsed. */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]+>/g, " ")
    .replace(/&nbsp;/g, " ")
    .replace(/&amp;/g, "&")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/\s+/g, " ")
    .trim();
}

/** Used when no backend is configured: the tools exist but say so. */
export class NoTools implements ToolBackend {
  search(): Promise<string> {
    return Promise.reject(new Error("search is not configured on this worker"));
  }
  read(): Promise<string> {
    return Promise.reject(new Error("read is not configured on this worker"));
  }
}
