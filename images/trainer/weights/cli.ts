// Registers `l0 weights`: the weight service standalone, serving a directory of exported
// versions (`<dir>/<version>/{manifest.json, *.safetensors}`). Flags and L0_WEIGHTS_* variables.
import { type Command } from "commander";
import { addOptions } from "../../../lib/config.js";
import { WEIGHTS_CONFIG, WEIGHTS_ENV_PREFIX } from "./config.js";
import { runMain } from "../../../lib/run-main.js";

export function register(program: Command): void {
  const cmd = program
    .command("weights")
    .description(
      "Serve exported policy weights to inference sidecars over gRPC (Latest, Watch, Pull, fan-out)",
    );
  addOptions(cmd, WEIGHTS_CONFIG, WEIGHTS_ENV_PREFIX);
  cmd.action(async (opts: Record<string, unknown>) => {
    const { main } = await import("./main.js");
    await runMain("weights", () => main(opts));
  });
}
