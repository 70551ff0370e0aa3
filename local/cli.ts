// Registers `l0 local`: a TrainingRun as local processes (trainer + workers) on this machine.
import { type Command } from "commander";
import { addOptions } from "../lib/config.js";
import { runMain } from "../lib/run-main.js";
import { LOCAL_CONFIG, LOCAL_ENV_PREFIX } from "./config.js";

export function register(program: Command): void {
  const cmd = program
    .command("local")
    .description("Run a TrainingRun on this machine: the trainer and its workers as local processes");
  // -f as kubectl has it; the rest follows lib/config.ts (flag, L0_LOCAL_* variable, default).
  cmd.requiredOption("-f, --file <path>", "TrainingRun YAML/JSON to run");
  addOptions(cmd, LOCAL_CONFIG, LOCAL_ENV_PREFIX);
  cmd.action(async (opts: Record<string, unknown>) => {
    const { main } = await import("./main.js");
    await runMain("local", () => main(opts));
  });
}
