// Registers `l0 sidecar`: the weight-sync sidecar beside an inference engine. Flags and
// L0_SIDECAR_* variables.
import { type Command } from "commander";
import { addOptions } from "../../lib/config.js";
import { SIDECAR_CONFIG, SIDECAR_ENV_PREFIX } from "./config.js";
import { runMain } from "../../lib/run-main.js";

export function register(program: Command): void {
  const cmd = program
    .command("sidecar")
    .description("Keep an inference engine on the newest policy weights: pull, verify, swap, reload, report");
  addOptions(cmd, SIDECAR_CONFIG, SIDECAR_ENV_PREFIX);
  cmd.action(async (opts: Record<string, unknown>) => {
    const { main } = await import("./main.js");
    await runMain("sidecar", () => main(opts));
  });
}
