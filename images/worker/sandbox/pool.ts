// Warm pool of pre-spawned kernels, so an episode never waits for bwrap + Python start-up.
// A kernel leaves the pool for exactly one episode and is killed afterwards: never reused.
import { type Logger, errorFields } from "../../../lib/log.js";
import { ownerTag } from "./cgroup.js";
import { type SandboxHost } from "./host.js";
import { Kernel } from "./kernel.js";

export interface PoolOptions {
  host: SandboxHost;
  /** Kernels kept ready. */
  size: number;
  logger: Logger;
  /** Called with the seconds each kernel took to become ready (l0_sandbox_start_seconds). */
  onStart?: (seconds: number) => void;
  /** Prefix of cgroup names; unique per worker process. */
  namePrefix?: string;
}

export class KernelPool {
  #idle: Kernel[] = [];
  #seq = 0;
  #starting = 0;
  #closed = false;
  #failures = 0;
  /** Kernels being started, so close() can wait for them instead of leaving them behind. */
  readonly #inflight = new Set<Promise<Kernel>>();
  /** Every kernel started and not yet discarded (idle or serving an episode). */
  readonly #live = new Set<Kernel>();
  readonly #dying = new Set<Promise<void>>();
  readonly #opts: PoolOptions;
  readonly #prefix: string;

  constructor(opts: PoolOptions) {
    this.#opts = opts;
    this.#prefix = opts.namePrefix ?? `l0-kernel-${ownerTag()}`;
  }

  get idle(): number {
    return this.#idle.length;
  }

  /** Kernels started and not discarded, for the memory guard. */
  live(): Iterable<Kernel> {
    return this.#live;
  }

  /** Starts kernels until `size` are ready; resolves when the first fill is done. */
  async fill(): Promise<void> {
    const want = this.#opts.size - this.#idle.length - this.#starting;
    // Two at a time: start-up is CPU-bound and must not starve running episodes.
    const lanes = Array.from({ length: Math.min(2, Math.max(0, want)) }, async () => {
      while (!this.#closed && this.#idle.length + this.#starting < this.#opts.size) {
        this.#starting++;
        try {
          const k = await this.#spawn();
          if (this.#closed) {
            this.#live.delete(k);
            await k.kill();
          } else this.#idle.push(k);
          this.#failures = 0;
        } catch (err) {
          this.#failures++;
          this.#opts.logger.error("kernel start failed", { ...errorFields(err), failures: this.#failures });
          if (this.#failures >= 3) return; // acquire() will report it; do not spin
        } finally {
          this.#starting--;
        }
      }
    });
    await Promise.all(lanes);
  }

  /** A ready kernel for one episode: from the pool, or started now when the pool is empty. */
  async acquire(): Promise<Kernel> {
    if (this.#closed) throw new Error("kernel pool is closed");
    let k: Kernel | undefined;
    while ((k = this.#idle.shift())) {
      if (k.alive) break;
      this.#live.delete(k);
      void k.kill();
    }
    // Refill after this turn of the event loop: spawning is synchronous work (cgroup writes,
    // fork/exec) that the caller, who already has its kernel, should not wait for.
    setImmediate(() => void this.fill());
    return k ?? this.#spawn();
  }

  /**
   * Kills an episode's kernel (never returned to the pool). The SIGKILL is sent at once; reaping
   * and cgroup removal finish in the background so the episode's slot frees without waiting.
   */
  discard(k: Kernel): Promise<void> {
    this.#live.delete(k);
    const p = k.kill().then(
      (gone) => {
        if (!gone) this.#opts.logger.error("a kernel's processes or cgroups outlived it", { kernel: k.name });
      },
      (err: unknown) => {
        this.#opts.logger.warn("kernel cleanup failed", errorFields(err));
      },
    );
    this.#dying.add(p);
    void p.finally(() => this.#dying.delete(p));
    return Promise.resolve();
  }

  /** Resolves once every discarded kernel is reaped and its cgroups removed. */
  async settle(): Promise<void> {
    while (this.#dying.size > 0) await Promise.all([...this.#dying]);
  }

  /** Kills idle kernels and waits for the ones being started (fill kills those on arrival). */
  async close(): Promise<void> {
    this.#closed = true;
    const idle = this.#idle.splice(0);
    for (const k of idle) this.#live.delete(k);
    await Promise.all([...idle.map((k) => k.kill()), ...[...this.#inflight].map((p) => p.catch(() => null))]);
    // A lane may still be killing the kernel it just got; let those kills finish too.
    while (this.#starting > 0) await new Promise((r) => setTimeout(r, 10));
    await this.settle();
  }

  #spawn(): Promise<Kernel> {
    const seq = ++this.#seq;
    const t0 = performance.now();
    const p = Kernel.start({
      spec: this.#opts.host.specFor(seq),
      cgroups: this.#opts.host.cgroups,
      name: `${this.#prefix}-${seq}`,
    }).then((k) => {
      this.#opts.onStart?.((performance.now() - t0) / 1000);
      this.#live.add(k);
      return k;
    });
    this.#inflight.add(p);
    const done = (): void => void this.#inflight.delete(p);
    p.then(done, done);
    return p;
  }
}
