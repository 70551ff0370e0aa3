// Short-window figures for Stats: completed episodes per second over the last 10 s, and the
// engine's seconds per model turn over the last 256 completed episodes.

const WINDOW_S = 10;
const RING = 256;

export class RecentStats {
  readonly #buckets = new Array<number>(WINDOW_S + 1).fill(0);
  readonly #bucketSecond = new Array<number>(WINDOW_S + 1).fill(-1);
  readonly #llm = new Float64Array(RING);
  readonly #turns = new Float64Array(RING);
  #i = 0;
  #llmSum = 0;
  #turnSum = 0;

  constructor(private readonly clock: () => number) {}

  episode(turns: readonly { llmSeconds?: number | null }[]): void {
    const sec = Math.floor(this.clock() / 1000);
    const b = sec % this.#buckets.length;
    if (this.#bucketSecond[b] !== sec) {
      this.#bucketSecond[b] = sec;
      this.#buckets[b] = 0;
    }
    this.#buckets[b]!++;
    let llm = 0;
    for (const t of turns) llm += t.llmSeconds ?? 0;
    const slot = this.#i++ % RING;
    this.#llmSum += llm - this.#llm[slot]!;
    this.#turnSum += turns.length - this.#turns[slot]!;
    this.#llm[slot] = llm;
    this.#turns[slot] = turns.length;
  }

  episodesPerSecond(): number {
    const sec = Math.floor(this.clock() / 1000);
    let n = 0;
    // The current second is partial; count the WINDOW_S full seconds before it.
    for (let s = sec - WINDOW_S; s < sec; s++) {
      const b = ((s % this.#buckets.length) + this.#buckets.length) % this.#buckets.length;
      if (this.#bucketSecond[b] === s) n += this.#buckets[b]!;
    }
    return n / WINDOW_S;
  }

  llmSecondsPerTurn(): number {
    return this.#turnSum > 0 ? this.#llmSum / this.#turnSum : 0;
  }
}
