// How the worker reports a run of failed Lease calls (the hub not up yet during a long warm
// start, a hub restart): one warning when the failures start, debug lines while they go on, and
// one info line with the count and how long it lasted when leasing works again. Pure.

/** Consecutive failed Lease calls and when the first of them failed. */
export interface LeaseStreak {
  failures: number;
  sinceMs: number;
}

export const NO_FAILURES: LeaseStreak = { failures: 0, sinceMs: 0 };

export interface LeaseLog {
  level: "warn" | "debug" | "info";
  message: string;
  fields: { failures: number; downMs?: number };
}

/** The streak after one Lease call (`ok`: it succeeded) at `nowMs`, and what to log (null: nothing). */
export function leaseOutcome(
  prev: LeaseStreak,
  ok: boolean,
  nowMs: number,
): { next: LeaseStreak; log: LeaseLog | null } {
  if (ok) {
    if (prev.failures === 0) return { next: prev, log: null };
    return {
      next: NO_FAILURES,
      log: {
        level: "info",
        message: "leasing recovered",
        fields: { failures: prev.failures, downMs: nowMs - prev.sinceMs },
      },
    };
  }
  const next =
    prev.failures === 0 ? { failures: 1, sinceMs: nowMs } : { ...prev, failures: prev.failures + 1 };
  return {
    next,
    log: {
      level: prev.failures === 0 ? "warn" : "debug",
      message: "lease failed, backing off",
      fields: { failures: next.failures },
    },
  };
}
