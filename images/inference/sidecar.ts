// The weight-sync sidecar: watches the weight service for new versions, pulls the newest one
// (from a peer or the service) into staging on the volume it shares with the engine, moves it
// into place atomically, asks the engine to load it exactly once, and reports the version the
// engine serves. A failed pull or load leaves the engine on its previous version (Degraded).
import { copyFile, mkdir, readdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fromServiceError, tokenMetadata, call as unaryCall } from "../../lib/grpc.js";
import { type Logger, errorFields } from "../../lib/log.js";
import { l0, type WeightsClient } from "../../lib/proto.js";
import { bulkAt } from "../../lib/weights/bulk.js";
import { UnansweredBulkPorts } from "../../lib/weights/bulk-ports.js";
import { type Manifest, fromProto, safetensorsIndex } from "../../lib/weights/manifest.js";
import { type WeightsMetrics } from "../../lib/weights/metrics.js";
import { type EngineAdapter, type LoadRequest } from "./engines.js";
import { type PeerStore } from "./peer.js";
import { type PullTuning, pullVersion, weightsClient } from "./puller.js";

export type SidecarState = "Serving" | "Syncing" | "Degraded";

export interface SidecarStatus {
  engineId: string;
  /** Version the engine serves; 0 = the weights it started with. */
  version: number;
  state: SidecarState;
  targetVersion: number;
  detail: string;
}

export interface SidecarOptions {
  engineId: string;
  /** The volume shared with the engine: staging/, versions/<v>/ and the `current` link live here. */
  root: string;
  service: WeightsClient;
  token: string;
  engine: EngineAdapter;
  peers: PeerStore;
  logger: Logger;
  metrics: WeightsMetrics;
  /** host:port where this sidecar serves peers; empty = it serves none. */
  peerAddress?: string;
  /** Port on peerAddress's host of this sidecar's bulk channel; 0 = none. */
  peerBulkPort?: number;
  /** host:port the service is dialled at, to reach its bulk port on the same host; unset = no bulk from it. */
  serviceAddress?: string;
  /** Non-weight model files (config.json, tokenizer files) copied into every version dir. */
  baseModelDir?: string;
  reportIntervalMs?: number;
  /** How long a load waits for an engine that refuses connections (starting or restarting). */
  engineWaitMs?: number;
  /** Wait before pulling a version again after its pull failed. */
  retryMs?: number;
  rpcTimeoutMs?: number;
  pull?: PullTuning;
  clientFor?: (address: string) => WeightsClient;
}

const PROTO_STATE: Record<SidecarState, l0.v1.EngineWeightState> = {
  Serving: l0.v1.EngineWeightState.ENGINE_WEIGHT_STATE_SERVING,
  Syncing: l0.v1.EngineWeightState.ENGINE_WEIGHT_STATE_SYNCING,
  Degraded: l0.v1.EngineWeightState.ENGINE_WEIGHT_STATE_DEGRADED,
};

/** A connection the engine refused or dropped (it is not up), as opposed to an answer. */
function unreachable(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined, i = 0; e && i < 4; i++) {
    if (["ECONNREFUSED", "ECONNRESET", "UND_ERR_SOCKET", "EPIPE"].includes(e.code ?? "")) return true;
    e = e.cause as typeof e;
  }
  return false;
}

export class Sidecar {
  readonly #o: SidecarOptions;
  readonly #log: Logger;
  readonly #clients = new Map<string, WeightsClient>();
  #status: SidecarStatus;
  /** Newest announced manifest and when it was announced. */
  #wanted: { manifest: Manifest; at: number } | null = null;
  /** Version whose load was attempted (success or not): never loaded twice. */
  #attempted = 0;
  #previous = 0;
  #wake: (() => void) | null = null;
  /** The version the engine was last seen to load, to load again if it restarts without it. */
  #served: { manifest: Manifest; dir: string } | null = null;
  /** The periodic check of what the engine serves is due (run by the sync loop when idle). */
  #checkDue = false;
  /** Bulk ports that did not answer lately: remembered across versions (lib/weights/bulk-ports.ts). */
  readonly #unanswered: UnansweredBulkPorts;

  constructor(o: SidecarOptions) {
    this.#o = o;
    this.#log = o.logger.child({ engine: o.engineId });
    this.#unanswered = o.pull?.unanswered ?? new UnansweredBulkPorts();
    this.#status = { engineId: o.engineId, version: 0, state: "Serving", targetVersion: 0, detail: "" };
  }

  status(): SidecarStatus {
    return { ...this.#status };
  }

  /** Null when the engine serves a synced version, else why not (for /readyz). */
  readiness(): string | null {
    return this.#status.version > 0 ? null : `no weights version served yet (${this.#status.state})`;
  }

  /** Runs until the signal aborts: the watch, the sync loop and the periodic report. */
  async run(signal: AbortSignal): Promise<void> {
    await mkdir(join(this.#o.root, "staging"), { recursive: true });
    await mkdir(join(this.#o.root, "versions"), { recursive: true });
    const timer = setInterval(() => {
      void this.#report();
      this.#checkDue = true;
      this.#wake?.();
    }, this.#o.reportIntervalMs ?? 10_000);
    signal.addEventListener("abort", () => this.#wake?.(), { once: true });
    try {
      await Promise.all([this.#watchLoop(signal), this.#syncLoop(signal)]);
    } finally {
      clearInterval(timer);
      for (const c of this.#clients.values()) c.close();
    }
  }

  /** Offers a version as if announced (tests, and `l0 local` wiring without a Watch). */
  offer(manifest: Manifest, at = Date.now()): void {
    if (this.#wanted && this.#wanted.manifest.version >= manifest.version) return;
    if (manifest.version <= this.#attempted) return;
    this.#wanted = { manifest, at };
    this.#wake?.();
  }

  async #watchLoop(signal: AbortSignal): Promise<void> {
    let backoff = 250;
    while (!signal.aborted) {
      // Say what this engine serves whenever (re)connecting: a restarted trainer numbers its next
      // versions above what the engines hold, and waits for these reports to know.
      void this.#report();
      const stream = this.#o.service.watch(
        { engineId: this.#o.engineId, afterVersion: this.#attempted },
        tokenMetadata(this.#o.token),
      );
      const cancel = () => stream.cancel();
      signal.addEventListener("abort", cancel, { once: true });
      try {
        for await (const a of stream as AsyncIterable<l0.v1.VersionAnnouncement>) {
          backoff = 250;
          try {
            this.offer(fromProto(a.manifest, `announcement of v${Number(a.version)}`));
          } catch (err) {
            this.#log.error("bad version announcement", errorFields(err));
          }
        }
      } catch (err) {
        if (!signal.aborted)
          this.#log.warn("weights watch broken, reconnecting", {
            backoffMs: backoff,
            ...errorFields(fromServiceError(err)),
          });
      } finally {
        signal.removeEventListener("abort", cancel);
      }
      if (signal.aborted) break;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(10_000, backoff * 2);
    }
  }

  async #syncLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const w = this.#wanted;
      if (!w || w.manifest.version <= this.#attempted) {
        if (this.#checkDue) {
          // Here, not in the timer: never beside a sync, whose load would look like a mismatch.
          this.#checkDue = false;
          await this.#recheck(signal);
          continue;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = null;
        continue;
      }
      try {
        await this.#sync(w.manifest, w.at, signal);
      } catch (err) {
        // Anything #sync did not expect (the volume, the link): stay up, report, try again later.
        this.#log.error("weights sync failed", { version: w.manifest.version, ...errorFields(err) });
        this.#set({
          state: "Degraded",
          detail: `sync of v${w.manifest.version} failed: ${(err as Error).message}`,
        });
        await this.#report();
        if (!signal.aborted) await new Promise((r) => setTimeout(r, this.#o.retryMs ?? 5000));
      }
    }
  }

  async #sync(m: Manifest, announcedAt: number, signal: AbortSignal): Promise<void> {
    const v = m.version;
    const log = this.#log.child({ version: v });
    this.#set({ state: "Syncing", targetVersion: v, detail: "" });
    await this.#report();
    const staging = join(this.#o.root, "staging", String(v));
    const final = join(this.#o.root, "versions", String(v));
    try {
      // staging/<v> left by an interrupted pull of this same version is kept: the puller re-checks
      // its chunks against the manifest and pulls only the rest.
      await mkdir(staging, { recursive: true });
      this.#o.peers.begin(m, staging);
      const plan = await unaryCall(
        this.#o.service.plan,
        this.#o.service,
        {
          version: v,
          engineId: this.#o.engineId,
          peerAddress: this.#o.peerAddress ?? "",
          peerBulkPort: this.#o.peerAddress ? (this.#o.peerBulkPort ?? 0) : 0,
        },
        { token: this.#o.token, timeoutMs: this.#o.rpcTimeoutMs ?? 10_000 },
      );
      const service = {
        client: this.#o.service,
        label: "service",
        bulk: bulkAt(this.#o.serviceAddress, plan.serviceBulkPort),
      };
      const primary = plan.sourceAddress
        ? {
            client: this.#clientFor(plan.sourceAddress),
            label: plan.sourceEngineId || plan.sourceAddress,
            bulk: bulkAt(plan.sourceAddress, plan.sourceBulkPort),
          }
        : service;
      log.info("pulling weights", {
        source: primary.label,
        bulk: primary.bulk ?? "",
        shards: m.shards.length,
      });
      await pullVersion({
        manifest: m,
        dir: staging,
        primary,
        fallback: primary === service ? undefined : service,
        token: this.#o.token,
        pullerId: this.#o.engineId,
        metrics: this.#o.metrics,
        logger: log,
        signal,
        ...this.#o.pull,
        unanswered: this.#unanswered,
        onVerified: (shard, end) => this.#o.peers.verified(v, shard, end),
        resume: true,
      });
      await this.#complete(m, staging);
      await rm(final, { recursive: true, force: true });
      await rename(staging, final);
      this.#o.peers.moved(v, final);
    } catch (err) {
      // staging/<v> stays: the next attempt resumes from its verified chunks.
      this.#o.peers.fail(v, (err as Error).message);
      log.error("weights pull failed; engine keeps its version", {
        served: this.#status.version,
        ...errorFields(err),
      });
      this.#set({ state: "Degraded", detail: `pull of v${v} failed: ${(err as Error).message}` });
      await this.#report();
      if (!signal.aborted) await new Promise((r) => setTimeout(r, this.#o.retryMs ?? 5000));
      return; // #attempted unchanged: the same (or a newer) version is pulled again
    }
    this.#attempted = v;
    await this.#load(m, final, announcedAt, log, signal);
    await this.#collect();
  }

  async #load(
    m: Manifest,
    dir: string,
    announcedAt: number,
    log: Logger,
    signal: AbortSignal,
  ): Promise<void> {
    const before = this.#status.version;
    await this.#link(dir);
    try {
      await this.#loadWhenUp({ dir, version: m.version, model: m.model }, log, signal);
    } catch (err) {
      log.error("engine failed to load weights; it keeps the previous version", {
        served: before,
        ...errorFields(err),
      });
      const prevDir = before > 0 ? join(this.#o.root, "versions", String(before)) : null;
      if (prevDir) await this.#link(prevDir);
      if (prevDir && !this.#o.engine.keepsPreviousOnFailure) {
        await this.#o.engine
          .load({ dir: prevDir, version: before, model: m.model }, signal)
          .catch((e: unknown) => log.error("engine failed to reload the previous version", errorFields(e)));
      }
      this.#set({
        state: "Degraded",
        detail: `engine load of v${m.version} failed: ${(err as Error).message}`,
      });
      await this.#report();
      return;
    }
    this.#previous = before;
    this.#served = { manifest: m, dir };
    this.#set({ version: m.version, state: "Serving", targetVersion: m.version, detail: "" });
    this.#o.metrics.version.set({ role: "served" }, m.version);
    const seconds = (Date.now() - announcedAt) / 1000;
    this.#o.metrics.syncSeconds.observe(seconds);
    log.info("engine serves weights", { seconds: Number(seconds.toFixed(3)) });
    await this.#report();
  }

  /** Adds what an engine needs beside the shards: the safetensors index and the base model's files. */
  async #complete(m: Manifest, dir: string): Promise<void> {
    await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify(safetensorsIndex(m)));
    await writeFile(join(dir, "manifest.json"), JSON.stringify(m));
    const base = this.#o.baseModelDir;
    if (!base) return;
    for (const name of await readdir(base)) {
      if (
        name.endsWith(".safetensors") ||
        name === "model.safetensors.index.json" ||
        name === "manifest.json"
      )
        continue;
      await copyFile(join(base, name), join(dir, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "EISDIR") throw err;
      });
    }
  }

  /**
   * engine.load, waiting for an engine that is not up (starting, or restarting after a crash:
   * the connection is refused) for up to `engineWaitMs`; an engine that answers and fails to load
   * fails at once.
   */
  async #loadWhenUp(req: LoadRequest, log: Logger, signal: AbortSignal): Promise<void> {
    const end = Date.now() + (this.#o.engineWaitMs ?? 120_000);
    for (let delay = 250; ; delay = Math.min(5000, delay * 2)) {
      try {
        return await this.#o.engine.load(req, signal);
      } catch (err) {
        if (!unreachable(err) || Date.now() + delay > end || signal.aborted) throw err;
        log.info("engine not reachable; waiting for it to load the weights", { retryInMs: delay });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * An engine that restarted (its container, after a crash) comes back on other weights while this
   * sidecar would go on reporting the version it loaded: where the adapter can tell, load it again.
   */
  async #recheck(signal: AbortSignal): Promise<void> {
    const s = this.#served;
    const serves = this.#o.engine.serves;
    if (!s || !serves || this.#status.state !== "Serving" || this.#status.version !== s.manifest.version)
      return;
    const req = { dir: s.dir, version: s.manifest.version, model: s.manifest.model };
    if ((await serves(req, signal).catch(() => null)) !== false) return;
    const log = this.#log.child({ version: req.version });
    log.warn("the engine no longer serves the version it loaded (restarted?); loading it again");
    await this.#load(s.manifest, s.dir, Date.now(), log, signal);
  }

  /** Points `current` at dir atomically (a new link renamed over the old one). */
  async #link(dir: string): Promise<void> {
    const tmp = join(this.#o.root, `.current-${process.pid}-${Date.now()}`);
    await symlink(dir, tmp);
    await rename(tmp, join(this.#o.root, "current"));
  }

  /** Keeps the served version, the one before it (peers may still pull it) and the last attempt. */
  async #collect(): Promise<void> {
    const keep = new Set([this.#status.version, this.#previous, this.#attempted].map(String));
    for (const sub of ["versions", "staging"]) {
      const dir = join(this.#o.root, sub);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (keep.has(name)) continue;
        this.#o.peers.drop(Number(name));
        await rm(join(dir, name), { recursive: true, force: true });
      }
    }
  }

  #set(p: Partial<SidecarStatus>): void {
    this.#status = { ...this.#status, ...p };
  }

  async #report(): Promise<void> {
    const s = this.#status;
    try {
      await unaryCall(
        this.#o.service.report,
        this.#o.service,
        {
          engineId: s.engineId,
          version: s.version,
          state: PROTO_STATE[s.state],
          detail: s.detail,
          targetVersion: s.targetVersion,
        },
        { token: this.#o.token, timeoutMs: this.#o.rpcTimeoutMs ?? 10_000 },
      );
    } catch (err) {
      this.#log.debug("weights report failed", errorFields(err));
    }
  }

  #clientFor(address: string): WeightsClient {
    let c = this.#clients.get(address);
    if (!c) this.#clients.set(address, (c = (this.#o.clientFor ?? weightsClient)(address)));
    return c;
  }
}
