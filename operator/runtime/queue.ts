// A keyed, coalescing work queue (client-go's workqueue shape): a key queued twice is processed
// once; a key is never processed by two workers at once (an add while it runs re-queues it after);
// failures retry with capped exponential backoff; delayed adds keep only the earliest timer.
import { type BackoffPolicy, DEFAULT_BACKOFF, backoffDelay } from "./backoff.js";

export interface QueueHooks {
  /** Depth changed (keys waiting, not counting those being processed). */
  depth?: (n: number) => void;
  /** A key was re-queued after a failure. */
  retry?: (key: string) => void;
}

export type Handler = (key: string) => Promise<void>;

export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #waiters: (() => void)[] = [];
  readonly #policy: BackoffPolicy;
  readonly #hooks: QueueHooks;
  readonly #random: () => number;
  #stopped = false;

  constructor(opts: { backoff?: BackoffPolicy; hooks?: QueueHooks; random?: () => number } = {}) {
    this.#policy = opts.backoff ?? DEFAULT_BACKOFF;
    this.#hooks = opts.hooks ?? {};
    this.#random = opts.random ?? Math.random;
  }

  get length(): number {
    return this.#queue.length;
  }
  get stopped(): boolean {
    return this.#stopped;
  }

  add(key: string): void {
    if (this.#stopped) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#queue.push(key);
    this.#hooks.depth?.(this.#queue.length);
    this.#waiters.shift()?.();
  }

  /** Adds the key after `ms`; an earlier pending delay for the key wins. */
  addAfter(key: string, ms: number): void {
    if (this.#stopped) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const prev = this.#timers.get(key);
    if (prev && prev.at <= at) return;
    if (prev) clearTimeout(prev.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /** Re-queues a failed key after its backoff; returns the delay. */
  addRateLimited(key: string): number {
    const n = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, n);
    const delay = backoffDelay(n, this.#policy, this.#random());
    this.#hooks.retry?.(key);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the failure count of a key (after a success). */
  forget(key: string): void {
    this.#failures.delete(key);
  }
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  async #next(): Promise<string | undefined> {
    while (!this.#stopped && this.#queue.length === 0) await new Promise<void>((r) => this.#waiters.push(r));
    if (this.#stopped) return undefined;
    const key = this.#queue.shift()!;
    this.#queued.delete(key);
    this.#processing.add(key);
    this.#hooks.depth?.(this.#queue.length);
    return key;
  }

  #done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.delete(key)) this.add(key);
  }

  /** Runs `concurrency` workers until stop(); resolves once every in-flight handler returned. */
  async run(concurrency: number, handler: Handler): Promise<void> {
    const worker = async () => {
      for (;;) {
        const key = await this.#next();
        if (key === undefined) return;
        try {
          await handler(key);
        } catch {
          // Handlers report their own errors; one that throws still gets retried, never lost.
          this.addRateLimited(key);
        } finally {
          this.#done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  }

  stop(): void {
    this.#stopped = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    for (const w of this.#waiters.splice(0)) w();
  }
}
