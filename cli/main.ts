// `l0`: the one entry point of every L0 program (operator, hub, worker, learner client,
// local). Builds the command tree from cli/commands.ts and runs it.
import { Command } from "commander";
import { EXIT } from "../lib/run-main.js";
import { packageVersion } from "../lib/version.js";
import { COMMANDS } from "./commands.js";

export function buildProgram(): Command {
  const program = new Command("l0")
    .description(
      "L0 Operator: agentic reinforcement learning (NB-Agent, RLVR) on Kubernetes or on one machine.",
    )
    .version(packageVersion())
    .showHelpAfterError()
    .enablePositionalOptions()
    // One exit-code table for every program (lib/run-main.ts EXIT): a usage error (unknown
    // command or flag, a missing argument) exits 2, as a bad configuration does; help and
    // --version exit 0. Subcommands inherit this when they are added below.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.config));
  for (const register of COMMANDS) register(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
