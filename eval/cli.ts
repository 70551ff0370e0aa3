// Registers `l0 eval` (NB-Agent episodes over a dataset against an engine, scored) and
// `l0 trajectories` (one trajectory as a transcript); docs/eval.md.
import { type Command } from "commander";
import { addOptions } from "../lib/config.js";
import { runMain } from "../lib/run-main.js";
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
  program
    .command("trajectories")
    .description(
      "Print one trajectory as a transcript, from trajectories.jsonl (a training run) or results.jsonl (l0 eval)",
    )
    .argument("<file>", "trajectories.jsonl in a run's checkpoint directory, or an l0 eval results.jsonl")
    .option("--step <n>", "only trajectories of this training step", (v) => Number(v))
    .option("--index <i>", "which one (negative counts from the end)", (v) => Number(v), -1)
    .option("--id <id>", "the trajectory (or eval question) id")
    .action(async (file: string, opts: { step?: number; index: number; id?: string }) => {
      const { pick, transcript } = await import("./transcript.js");
      await runMain(
        "trajectories",
        async () => void process.stdout.write(transcript(pick(file, opts)) + "\n"),
      );
    });
}
