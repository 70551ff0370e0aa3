// Small helpers every benchmark uses: percentiles, medians of repeated runs, and the
// closing JSON line.

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(samples: number[]): { p50: number; p99: number; mean: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return { p50: percentile(s, 50), p99: percentile(s, 99), mean, n: s.length };
}

export const median = (xs: number[]): number =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

export const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

/** Prints the benchmark's figures as its last line of output. */
export function emit(figures: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(figures) + "\n");
}
