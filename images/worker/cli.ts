// Registers `l0 worker` (flags from config.ts, L0_WORKER_* variables).
import { type Command } from "commander";
import { addOptions } from "../../lib/config.js";
import { runMain } from "../../lib/run-main.js";
import { WORKER_CONFIG, WORKER_ENV_PREFIX } from "./config.js";

export function register(program: Command): void {
  const cmd = program
    .command("worker")
    .description(
      "Run an agent worker: K concurrent NB-Agent episodes in sandboxed Python kernels, leased from the hub",
    );
  addOptions(cmd, WORKER_CONFIG, WORKER_ENV_PREFIX);
  cmd.action(async (opts: Record<string, unknown>) => {
    const { main } = await import("./main.js");
    await runMain("worker", () => main(opts));
  });
}
