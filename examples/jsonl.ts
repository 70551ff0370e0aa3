// JSONL as the example generators write and read it: one JSON value per line, a final newline,
// blank lines skipped. A line that is not JSON fails with its file and line number.
import { readFileSync } from "node:fs";

export const toJsonl = (rows: readonly unknown[]): string =>
  rows.map((x) => JSON.stringify(x)).join("\n") + "\n";

export function readJsonl<T>(path: string): T[] {
  const rows: T[] = [];
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (!line.trim()) return;
      try {
        rows.push(JSON.parse(line) as T);
      } catch (e) {
        throw new Error(`${path}:${i + 1}: not JSON (${(e as Error).message})`);
      }
    });
  return rows;
}
