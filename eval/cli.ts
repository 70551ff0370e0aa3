// Registers `l0 eval`: NB-Agent episodes over a dataset against an engine, scored (docs/eval.md).
import { type Command } from "commander";
import { addOptions } from "../lib/config.js";
import { runMain } from "../cli/run.js";
import { EVAL_CONFIG, EVAL_ENV_PREFIX } from "./config.js";

export function register(program: Command): void {
  const cmd = program
    .command("eval")
    .description(
      "Evaluate an agent on a dataset (SimpleQA CSV, HotpotQA JSON, JSONL): EM/F1, the training reward, an optional LLM judge",
    );
  cmd.option(
    "-f, --file <path>",
    "TrainingRun whose spec.agent and spec.reward to use (default: the CRD's defaults)",
  );
  addOptions(cmd, EVAL_CONFIG, EVAL_ENV_PREFIX);
  cmd.action(async (opts: Record<string, unknown>) => {
    const { main } = await import("./main.js");
    await runMain("eval", () => main(opts));
  });
}
