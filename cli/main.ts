// `l0`: the one entry point of every L0 program (operator, hub, worker, learner client,
// local). Builds the command tree from cli/commands.ts and runs it.
import { Command } from "commander";
import { packageVersion } from "../lib/version.js";
import { COMMANDS } from "./commands.js";

export function buildProgram(): Command {
  const program = new Command("l0")
    .description(
      "L0 Operator: agentic reinforcement learning (NB-Agent, RLVR) on Kubernetes or on one machine.",
    )
    .version(packageVersion())
    .showHelpAfterError()
    .enablePositionalOptions();
  for (const register of COMMANDS) register(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
