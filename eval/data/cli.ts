// Registers `l0 data`: convert, validate, deduplicate, filter, split and merge datasets into the
// trainer's JSONL; docs/data.md.
import { type Command } from "commander";
import { addOptions } from "../../lib/config.js";
import { runMain } from "../../lib/run-main.js";
import { DATA_CONFIG, DATA_ENV_PREFIX } from "./config.js";

export function register(program: Command): void {
  const cmd = program
    .command("data")
    .description(
      "Prepare training data: SimpleQA CSV, HotpotQA JSON, JSONL and Parquet in, each tagged with a data_source; the trainer's JSONL out (one file or a seeded train/eval split), deduplicated and filtered by l0 eval pass rates on request",
    )
    .argument(
      "<input...>",
      "dataset files, each [data_source=]path (data_source: the file name without extension)",
    );
  addOptions(cmd, DATA_CONFIG, DATA_ENV_PREFIX);
  cmd.action(async (inputs: string[], opts: Record<string, unknown>) => {
    const { main } = await import("./main.js");
    await runMain("data", async () => void (await main(inputs, opts)));
  });
}
