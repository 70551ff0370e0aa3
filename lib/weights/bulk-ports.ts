// The bulk ports that did not answer lately (transport auto), remembered by the puller process
// (the sidecar) across versions and keyed by address: pulls from such a source go over gRPC Pull,
// and its bulk port is tried again once BULK_RETRY_MS have passed (a port that was filtered may
// be opened by a NetworkPolicy update; trying it costs at most one connect deadline per period).

/** How long a bulk port that did not answer is left alone before it is tried again. */
export const BULK_RETRY_MS = 5 * 60_000;

/** Pure: whether to try a bulk port that last failed to answer at `failedAt` (undefined: never failed). */
export function tryBulkPort(failedAt: number | undefined, now: number, retryMs: number): boolean {
  return failedAt === undefined || now - failedAt >= retryMs;
}

export class UnansweredBulkPorts {
  readonly #failedAt = new Map<string, number>();
  readonly #now: () => number;
  readonly #retryMs: number;

  constructor(o: { now?: () => number; retryMs?: number } = {}) {
    this.#now = o.now ?? Date.now;
    this.#retryMs = o.retryMs ?? BULK_RETRY_MS;
  }

  /** True while the bulk port at `address` is to be skipped (it did not answer lately). */
  has(address: string): boolean {
    return !tryBulkPort(this.#failedAt.get(address), this.#now(), this.#retryMs);
  }

  /** The bulk port at `address` did not answer now. */
  add(address: string): void {
    this.#failedAt.set(address, this.#now());
  }
}
