// The hub hook: which policy version every inference engine serves, as reported by the
// sidecars, and a wait for "every engine serves v" that ends with a clear reason instead of
// hanging. The weight service feeds it; the hub (strict on-policy) reads it.
import { type Logger } from "../../../lib/log.js";

export type EngineWeightState = "Serving" | "Syncing" | "Degraded";

export interface EngineStatus {
  engineId: string;
  /** The version the engine serves (0 = none yet). */
  version: number;
  state: EngineWeightState;
  /** The version being pulled or that failed to load. */
  targetVersion: number;
  detail: string;
  updatedUnixMs: number;
}

export type AwaitServeResult =
  | { ok: true; engines: EngineStatus[] }
  | {
      ok: false;
      /** A condition reason for the run's status. */
      reason: "WeightSyncTimeout" | "EngineDegraded" | "EngineAhead" | "Aborted";
      message: string;
      engines: EngineStatus[];
    };

export interface AwaitServeOptions {
  timeoutMs: number;
  /** Engines that must have reported (e.g. the inference replicas); default 1. */
  minEngines?: number;
  signal?: AbortSignal;
  /**
   * `version` is the newest there is (the trainer just published it): an engine serving a newer
   * one holds weights this trainer never published (a number reused after a restart) and the wait
   * fails at once with EngineAhead instead of counting it as done.
   */
  newest?: boolean;
}

/** What the hub needs from weight sync. */
export interface WeightsHubHook {
  /** Engines heard from recently, sorted by id. */
  engines(): EngineStatus[];
  /** Resolves when at least minEngines engines report and every one serves >= version. */
  awaitAllServe(version: number, opts: AwaitServeOptions): Promise<AwaitServeResult>;
}

export interface EngineRegistryOptions {
  logger: Logger;
  now?: () => number;
  /** An engine silent for this long is forgotten (sidecars report every few seconds). */
  forgetAfterMs?: number;
}

/** Pure: has every engine reached `version`, or has one failed it for good? */
export function judge(
  engines: EngineStatus[],
  version: number,
  minEngines: number,
  newest = false,
):
  | { done: true }
  | { done: false; degraded?: EngineStatus[]; ahead?: EngineStatus[]; behind: EngineStatus[] } {
  const ahead = newest ? engines.filter((e) => e.version > version) : [];
  const behind = engines.filter((e) => e.version < version);
  if (ahead.length > 0) return { done: false, ahead, behind };
  const degraded = behind.filter((e) => e.state === "Degraded" && e.targetVersion >= version);
  if (degraded.length > 0) return { done: false, degraded, behind };
  if (behind.length === 0 && engines.length >= minEngines) return { done: true };
  return { done: false, behind };
}

const describe = (e: EngineStatus) =>
  `${e.engineId} (serves v${e.version}, ${e.state}${e.detail ? `: ${e.detail}` : ""})`;

export class EngineRegistry implements WeightsHubHook {
  readonly #engines = new Map<string, EngineStatus>();
  readonly #waiters = new Set<() => void>();
  readonly #now: () => number;
  readonly #forgetAfterMs: number;
  readonly #logger: Logger;

  constructor(opts: EngineRegistryOptions) {
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#forgetAfterMs = opts.forgetAfterMs ?? 120_000;
  }

  report(s: Omit<EngineStatus, "updatedUnixMs">): void {
    const prev = this.#engines.get(s.engineId);
    this.#engines.set(s.engineId, { ...s, updatedUnixMs: this.#now() });
    if (!prev || prev.version !== s.version || prev.state !== s.state)
      this.#logger.info("engine weights", {
        engine: s.engineId,
        version: s.version,
        state: s.state,
        detail: s.detail,
      });
    for (const w of this.#waiters) w();
  }

  engines(): EngineStatus[] {
    const cutoff = this.#now() - this.#forgetAfterMs;
    for (const [id, e] of this.#engines) if (e.updatedUnixMs < cutoff) this.#engines.delete(id);
    return [...this.#engines.values()].sort((a, b) => a.engineId.localeCompare(b.engineId));
  }

  /** Forgets every engine (e.g. after the inference replicas were replaced). */
  forget(): void {
    this.#engines.clear();
  }

  /** Versions some engine is still moving to: the service keeps them on disk. */
  targets(): Set<number> {
    return new Set(
      this.engines()
        .filter((e) => e.state === "Syncing")
        .map((e) => e.targetVersion),
    );
  }

  awaitAllServe(version: number, opts: AwaitServeOptions): Promise<AwaitServeResult> {
    const min = Math.max(1, opts.minEngines ?? 1);
    return new Promise((resolve) => {
      const finish = (r: AwaitServeResult) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        opts.signal?.removeEventListener("abort", onAbort);
        resolve(r);
      };
      const check = () => {
        const engines = this.engines();
        const j = judge(engines, version, min, opts.newest);
        if (j.done) return finish({ ok: true, engines });
        if (j.ahead)
          return finish({
            ok: false,
            reason: "EngineAhead",
            message: `engines serve a version newer than v${version}, the newest published, so weights no trainer of this attempt exported (a version number reused?): ${j.ahead.map(describe).join(", ")}`,
            engines,
          });
        if (j.degraded)
          finish({
            ok: false,
            reason: "EngineDegraded",
            message: `engines failed to load v${version} and serve an older version: ${j.degraded.map(describe).join(", ")}`,
            engines,
          });
      };
      const onAbort = () =>
        finish({ ok: false, reason: "Aborted", message: "wait aborted", engines: this.engines() });
      const timer = setTimeout(() => {
        const engines = this.engines();
        const behind = engines.filter((e) => e.version < version);
        const missing = engines.length < min ? `; ${engines.length} of ${min} engines reported` : "";
        finish({
          ok: false,
          reason: "WeightSyncTimeout",
          message: `not every engine serves v${version} after ${opts.timeoutMs} ms: ${behind.map(describe).join(", ") || "none behind"}${missing}`,
          engines,
        });
      }, opts.timeoutMs);
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(check);
      check();
    });
  }
}
