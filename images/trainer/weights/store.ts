// The exported versions on disk (`<dir>/<version>/{manifest.json, *.safetensors}`): finds new
// ones by polling (volumes do not deliver inotify reliably), validates them, and removes old ones
// once nobody pulls or needs them. A bad export is logged and skipped; the service keeps serving.
import { readFile, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { L0Error } from "../../../lib/errors.js";
import { type Logger, errorFields } from "../../../lib/log.js";
import { type Manifest, parseManifestText } from "../../../lib/weights/manifest.js";

export interface VersionEntry {
  version: number;
  dir: string;
  manifest: Manifest;
}

export interface StoreOptions {
  dir: string;
  logger: Logger;
  /** Newest versions always kept, whatever the pins (>= 1). */
  keep?: number;
  /** Versions a puller still needs (announced to it and not yet served); never removed. */
  isNeeded?: (version: number) => boolean;
}

const VERSION_DIR = /^[0-9]{1,15}$/;

export class VersionStore {
  readonly dir: string;
  readonly #logger: Logger;
  readonly #keep: number;
  readonly #isNeeded: (version: number) => boolean;
  readonly #versions = new Map<number, VersionEntry>();
  /** version -> mtime of the manifest we rejected, so a fixed file is tried again. */
  readonly #rejected = new Map<number, number>();
  readonly #pins = new Map<number, number>();
  readonly #listeners = new Set<(e: VersionEntry) => void>();
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | null = null;

  constructor(opts: StoreOptions) {
    this.dir = opts.dir;
    this.#logger = opts.logger;
    this.#keep = Math.max(1, opts.keep ?? 2);
    this.#isNeeded = opts.isNeeded ?? (() => false);
  }

  latest(): VersionEntry | undefined {
    let best: VersionEntry | undefined;
    for (const e of this.#versions.values()) if (!best || e.version > best.version) best = e;
    return best;
  }

  versions(): number[] {
    return [...this.#versions.keys()].sort((a, b) => a - b);
  }

  /** The entry of a version, or NotFound naming what is available. */
  get(version: number): VersionEntry {
    const e = this.#versions.get(version);
    if (!e) {
      const have = this.versions();
      throw new L0Error(
        "NotFound",
        `version ${version} is not available (have ${have.length ? have.join(", ") : "none"})`,
        { reason: "UnknownVersion" },
      );
    }
    return e;
  }

  /** Keeps a version on disk until the returned release is called (an in-flight pull). */
  pin(version: number): () => void {
    this.#pins.set(version, (this.#pins.get(version) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.#pins.get(version) ?? 1) - 1;
      if (n <= 0) this.#pins.delete(version);
      else this.#pins.set(version, n);
    };
  }

  /** Calls listener with every version that becomes the newest. */
  onNewest(listener: (e: VersionEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Looks for new versions now (the hub may call it right after ExportWeights), then collects old ones. */
  scan(): Promise<void> {
    // One scan at a time; a caller during a scan waits for it and then scans again.
    const run = async (): Promise<void> => {
      await this.#scanOnce();
      await this.collect();
    };
    this.#scanning = (this.#scanning ?? Promise.resolve()).then(run, run);
    return this.#scanning;
  }

  /** Polls every intervalMs until close(). */
  start(intervalMs: number): void {
    const tick = () => {
      this.scan()
        .catch((err: unknown) =>
          this.#logger.error("weight scan failed", { dir: this.dir, ...errorFields(err) }),
        )
        .finally(() => {
          if (this.#timer) this.#timer = setTimeout(tick, intervalMs);
        });
    };
    this.#timer = setTimeout(tick, 0);
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #scanOnce(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    const found = names
      .filter((n) => VERSION_DIR.test(n))
      .map(Number)
      .filter((v) => v > 0 && !this.#versions.has(v))
      .sort((a, b) => a - b);
    const before = this.latest()?.version ?? 0;
    for (const v of found) {
      const entry = await this.#load(v);
      if (entry) this.#versions.set(v, entry);
    }
    const newest = this.latest();
    if (newest && newest.version > before) {
      this.#logger.info("weights version available", { version: newest.version, dir: newest.dir });
      for (const l of this.#listeners) l(newest);
    }
  }

  /** Reads and checks one version dir; null when it is not (yet) complete or is invalid. */
  async #load(version: number): Promise<VersionEntry | null> {
    const dir = join(this.dir, String(version));
    const file = join(dir, "manifest.json");
    let mtime: number;
    try {
      mtime = (await stat(file)).mtimeMs;
    } catch {
      return null; // the learner writes manifest.json last: not complete yet
    }
    if (this.#rejected.get(version) === mtime) return null;
    try {
      const manifest = parseManifestText(await readFile(file, "utf8"), file);
      if (manifest.version !== version)
        throw new L0Error(
          "InvalidArgument",
          `${file}: version: is ${manifest.version}, the directory says ${version}`,
        );
      for (const s of manifest.shards) {
        const path = join(dir, s.file);
        const size = (await stat(path).catch(() => null))?.size;
        if (size === undefined)
          throw new L0Error("InvalidArgument", `${file}: shard ${s.file}: file is missing`);
        if (size !== s.sizeBytes)
          throw new L0Error(
            "InvalidArgument",
            `${file}: shard ${s.file}: file has ${size} bytes, manifest says ${s.sizeBytes}`,
          );
      }
      this.#rejected.delete(version);
      return { version, dir, manifest };
    } catch (err) {
      this.#rejected.set(version, mtime);
      this.#logger.error("weights version rejected", { version, ...errorFields(err) });
      return null;
    }
  }

  /** Removes versions older than the newest `keep` that nobody pulls or needs. */
  async collect(): Promise<number[]> {
    const all = this.versions();
    const protectedFrom = all.length - this.#keep;
    const removed: number[] = [];
    for (const [i, v] of all.entries()) {
      if (i >= protectedFrom || this.#pins.has(v) || this.#isNeeded(v)) continue;
      this.#versions.delete(v);
      await rm(join(this.dir, String(v)), { recursive: true, force: true });
      removed.push(v);
      this.#logger.info("weights version removed", { version: v });
    }
    return removed;
  }
}
