// The lease-failure log as a pure decision: one warning when Lease calls start failing, debug for
// the repeats, one info line with the count and the time down when leasing works again.
import { expect } from "chai";
import { type LeaseStreak, NO_FAILURES, leaseOutcome } from "../../images/worker/lease-streak.js";

describe("worker: lease failure streak", () => {
  const table: {
    name: string;
    prev: LeaseStreak;
    ok: boolean;
    now: number;
    next: LeaseStreak;
    log: [string, Record<string, number>] | null;
  }[] = [
    {
      name: "a success with no failures logs nothing",
      prev: NO_FAILURES,
      ok: true,
      now: 5,
      next: NO_FAILURES,
      log: null,
    },
    {
      name: "the first failure warns and starts the streak",
      prev: NO_FAILURES,
      ok: false,
      now: 1000,
      next: { failures: 1, sinceMs: 1000 },
      log: ["warn", { failures: 1 }],
    },
    {
      name: "a repeated failure is debug and keeps the start",
      prev: { failures: 1, sinceMs: 1000 },
      ok: false,
      now: 3000,
      next: { failures: 2, sinceMs: 1000 },
      log: ["debug", { failures: 2 }],
    },
    {
      name: "the twentieth failure is still debug",
      prev: { failures: 19, sinceMs: 1000 },
      ok: false,
      now: 360_000,
      next: { failures: 20, sinceMs: 1000 },
      log: ["debug", { failures: 20 }],
    },
    {
      name: "recovery logs info once with the count and the time down, and resets",
      prev: { failures: 20, sinceMs: 1000 },
      ok: true,
      now: 361_000,
      next: NO_FAILURES,
      log: ["info", { failures: 20, downMs: 360_000 }],
    },
  ];
  for (const c of table)
    it(c.name, () => {
      const { next, log } = leaseOutcome(c.prev, c.ok, c.now);
      expect(next).to.deep.equal(c.next);
      expect(log && [log.level, log.fields]).to.deep.equal(c.log);
    });

  it("a failure after a recovery warns again", () => {
    let s = NO_FAILURES;
    const levels: string[] = [];
    for (const [ok, now] of [
      [false, 0],
      [false, 1],
      [true, 2],
      [false, 3],
    ] as const) {
      const r = leaseOutcome(s, ok, now);
      s = r.next;
      levels.push(r.log?.level ?? "-");
    }
    expect(levels).to.deep.equal(["warn", "debug", "info", "warn"]);
  });
});
