#!/usr/bin/env node
// `npm run bench -- NAME [args]`: runs test/bench/NAME.ts (or test/bench/NAME/index.ts) through
// tsx. A benchmark prints its numbers and ends with one line holding one JSON object.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const [name, ...rest] = process.argv.slice(2);
const benchDir = join(root, "test", "bench");
const available = readdirSync(benchDir)
  .filter((f) => f.endsWith(".ts") || existsSync(join(benchDir, f, "index.ts")))
  .map((f) => f.replace(/\.ts$/, ""))
  .sort();
if (!name) {
  console.error(`usage: npm run bench -- NAME\navailable: ${available.join(", ")}`);
  process.exit(2);
}
const file = [join(benchDir, `${name}.ts`), join(benchDir, name, "index.ts")].find(existsSync);
if (!file) {
  console.error(`no benchmark "${name}"; available: ${available.join(", ")}`);
  process.exit(2);
}
const gen = spawnSync(process.execPath, [join(root, "scripts", "gen.mjs")], { stdio: "inherit" });
if (gen.status !== 0) process.exit(gen.status ?? 1);
const r = spawnSync(process.execPath, ["--import", "tsx", file, ...rest], { stdio: "inherit", cwd: root });
process.exit(r.status ?? 1);
