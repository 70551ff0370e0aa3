// One controller: informer events -> keys in a work queue -> one reconcile per key at a time.
// Level-based (controller-runtime): the key is only "namespace/name"; the reconciler re-reads
// the world from the caches. Errors retry with backoff; a 409 or 404 is a quiet requeue; a TerminalError
// is not retried; requeueAfterMs is for known waits; a periodic resync re-enqueues every object.
import { randomUUID } from "node:crypto";
import { type KubernetesObject } from "@kubernetes/client-node";
import { type Logger, errorFields } from "../../lib/log.js";
import { type Informer, keyOf } from "./informer.js";
import { ApiError } from "./kube.js";
import { type ControllerMetrics } from "./metrics.js";
import { childChanged, primaryChanged } from "./predicates.js";
import { WorkQueue } from "./queue.js";
import { type BackoffPolicy } from "./backoff.js";

export interface Request {
  namespace: string;
  name: string;
}
export interface Result {
  requeueAfterMs?: number;
}
export interface ReconcileContext {
  logger: Logger;
  reconcileId: string;
}
export type ReconcileFn = (req: Request, ctx: ReconcileContext) => Promise<Result>;

/** An error retrying cannot fix (the spec must change first). */
export class TerminalError extends Error {}

export interface ControllerOptions {
  name: string;
  reconcile: ReconcileFn;
  logger: Logger;
  metrics: ControllerMetrics;
  concurrency?: number;
  /** Re-enqueue every primary object this often (0 = never). */
  resyncMs?: number;
  backoff?: BackoffPolicy;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  readonly #o: ControllerOptions;
  readonly #primaries: Informer<KubernetesObject>[] = [];
  #resync: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.#o = opts;
    const m = opts.metrics;
    this.queue = new WorkQueue({
      backoff: opts.backoff,
      hooks: {
        depth: (n) => m.depth.set({ controller: opts.name }, n),
        retry: () => m.retries.inc({ controller: opts.name }),
      },
    });
  }

  /** Handlers for the informer of the reconciled kind: spec/metadata changes and deletions. */
  primaryHandlers<T extends KubernetesObject>() {
    return {
      add: (o: T) => this.queue.add(keyOf(o)),
      update: (prev: T, o: T) => primaryChanged(prev, o) && this.queue.add(keyOf(o)),
      delete: (o: T) => this.queue.add(keyOf(o)),
    };
  }

  /** Handlers for a child informer: any change enqueues the key(s) `mapFn` names (usually the owner). */
  childHandlers<T extends KubernetesObject>(mapFn: (o: T) => string[]) {
    const enqueue = (o: T) => mapFn(o).forEach((k) => this.queue.add(k));
    return {
      add: enqueue,
      update: (prev: T, o: T) => childChanged(prev, o) && enqueue(o),
      delete: enqueue,
    };
  }

  /** The informer whose objects a resync re-enqueues. */
  resyncFrom(informer: Informer<KubernetesObject>): void {
    this.#primaries.push(informer);
  }

  async #handle(key: string): Promise<void> {
    const [namespace = "", name = ""] = key.split("/");
    const reconcileId = randomUUID();
    const logger = this.#o.logger.child({ controller: this.name, namespace, name, reconcileId });
    const m = this.#o.metrics;
    const end = m.duration.startTimer({ controller: this.name });
    try {
      const res = await this.#o.reconcile({ namespace, name }, { logger, reconcileId });
      this.queue.forget(key);
      if (res.requeueAfterMs !== undefined) this.queue.addAfter(key, res.requeueAfterMs);
      m.reconciles.inc({
        controller: this.name,
        result: res.requeueAfterMs !== undefined ? "requeue" : "success",
      });
    } catch (err) {
      if (err instanceof ApiError && (err.code === 409 || err.code === 404)) {
        // Someone wrote first, or deleted what the cache still had: our cache is behind. Not an
        // error: read again shortly (a deleted object then reconciles to nothing).
        logger.debug(err.code === 409 ? "conflict, requeueing" : "gone meanwhile, requeueing", {
          error: err.message,
        });
        m.reconciles.inc({ controller: this.name, result: "conflict" });
        this.queue.addRateLimited(key);
      } else if (err instanceof TerminalError) {
        logger.warn("reconcile failed permanently", errorFields(err));
        m.reconciles.inc({ controller: this.name, result: "terminal" });
        this.queue.forget(key);
      } else {
        const delay = this.queue.addRateLimited(key);
        logger.error("reconcile failed", {
          ...errorFields(err),
          retryInMs: delay,
          failures: this.queue.failures(key),
        });
        m.reconciles.inc({ controller: this.name, result: "error" });
      }
    } finally {
      end();
    }
  }

  start(): void {
    const every = this.#o.resyncMs ?? 0;
    if (every > 0) {
      this.#resync = setInterval(() => {
        for (const inf of this.#primaries) for (const o of inf.list()) this.queue.add(keyOf(o));
      }, every);
      this.#resync.unref();
    }
    this.#running = this.queue.run(this.#o.concurrency ?? 4, (k) => this.#handle(k));
  }

  /** Stops taking keys and waits for in-flight reconciles to finish. */
  async stop(): Promise<void> {
    clearInterval(this.#resync);
    this.queue.stop();
    await this.#running;
  }
}
