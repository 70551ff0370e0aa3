#!/usr/bin/env node
// Entry point of the `l0` command. In a source checkout it runs the TypeScript sources
// through tsx (so `l0` never runs stale output); in an image, where only the compiled
// dist/ is shipped, it runs that. L0_USE_DIST=1 forces dist/.
import { existsSync } from "node:fs";

const source = new URL("../cli/main.ts", import.meta.url);
const dist = new URL("../dist/cli/main.js", import.meta.url);

async function hasTsx() {
  try {
    await import("tsx/esm/api");
    return true;
  } catch {
    return false;
  }
}

if (process.env.L0_USE_DIST !== "1" && existsSync(source) && (await hasTsx())) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
} else if (existsSync(dist)) {
  await import(dist.href);
} else {
  process.stderr.write(
    "l0: neither the sources with tsx nor a build in dist/ were found; run `npm run setup`.\n",
  );
  process.exit(1);
}
