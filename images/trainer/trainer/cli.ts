// Registers `l0 trainer` (flags from config.ts, L0_TRAINER_* variables).
import { type Command } from "commander";
import { addOptions } from "../../../lib/config.js";
import { runMain } from "../../../lib/run-main.js";
import { TRAINER_CONFIG, TRAINER_ENV_PREFIX } from "./config.js";

export function register(program: Command): void {
  const cmd = program
    .command("trainer")
    .description("Run the trainer pod: learner + rollout hub + the training loop with checkpoints");
  addOptions(cmd, TRAINER_CONFIG, TRAINER_ENV_PREFIX);
  cmd.action(async (opts: Record<string, unknown>) => {
    const { main } = await import("./main.js");
    await runMain("trainer", () => main(opts));
  });
}
