// Parked Lease long polls: each waits until work may have become leasable or its time is up.
// Waking k waiters for k new tasks (FIFO) avoids a thundering herd; phase changes wake all.
import { Deque } from "./queue.js";

export class WorkWaiters {
  readonly #waiters = new Deque<{ wake: () => void; done: boolean }>();

  /** Resolves when woken, after ms, or when the signal aborts. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const w = { wake: () => {}, done: false };
      const finish = (): void => {
        if (w.done) return;
        w.done = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", finish);
        resolve();
      };
      w.wake = finish;
      const timer = setTimeout(finish, ms);
      signal?.addEventListener("abort", finish, { once: true });
      this.#waiters.push(w);
    });
  }

  wake(k: number): void {
    while (k > 0 && this.#waiters.length > 0) {
      const w = this.#waiters.shift()!;
      if (w.done) continue;
      w.wake();
      k--;
    }
  }

  wakeAll(): void {
    this.wake(Infinity);
  }
}
