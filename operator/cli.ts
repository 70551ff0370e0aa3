// `l0 operator`: its flags and config. The program itself (operator/main.ts) is imported only when
// the command runs, so `l0 --help` does not load the Kubernetes client.
import { type Command } from "commander";
import { runMain } from "../lib/run-main.js";
import { addOptions } from "../lib/config.js";
import { OPERATOR_CONFIG } from "./config.js";

export function register(program: Command): void {
  const cmd = program
    .command("operator")
    .description("Run the Kubernetes operator (TrainingRun, AgentWorkerPool)");
  addOptions(cmd, OPERATOR_CONFIG, "L0_OPERATOR_");
  cmd.action((flags: Record<string, unknown>) =>
    runMain("operator", async () => {
      const { runOperator } = await import("./main.js");
      await runOperator(flags);
    }),
  );
}
