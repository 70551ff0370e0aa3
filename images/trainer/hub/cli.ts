// Registers `l0 hub` (flags from config.ts, L0_HUB_* variables).
import { type Command } from "commander";
import { addOptions } from "../../../lib/config.js";
import { runMain } from "../../../lib/run-main.js";
import { HUB_CONFIG, HUB_ENV_PREFIX } from "./config.js";

export function register(program: Command): void {
  const cmd = program
    .command("hub")
    .description(
      "Run the rollout hub: dataset -> leased agent episodes -> rewarded, advantaged training batches",
    );
  addOptions(cmd, HUB_CONFIG, HUB_ENV_PREFIX);
  cmd.action(async (opts: Record<string, unknown>) => {
    const { main } = await import("./main.js");
    await runMain("hub", () => main(opts));
  });
}
