// Retry delays for failed reconciles: exponential in the number of consecutive failures, capped,
// with full jitter in [delay/2, delay] so a burst of failures does not retry in lockstep. Pure.

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  /** 0 = no jitter; 1 = the delay is drawn from [delay/2, delay]. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 60_000, jitter: 1 };

/** Delay before retry number `failures` (1 = the first retry). `random` in [0, 1). */
export function backoffDelay(failures: number, policy: BackoffPolicy, random: number): number {
  const n = Math.max(1, Math.floor(failures));
  // 2^(n-1) overflows to Infinity long after the cap applies; Math.min handles it.
  const raw = Math.min(policy.maxMs, policy.baseMs * 2 ** (n - 1));
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.round(raw * (1 - (jitter / 2) * random));
}
