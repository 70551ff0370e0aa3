// Registers `l0 learner`: runs the Python learner service with the given flags (all passed
// through; `l0 learner --help` shows them). A --run-config TrainingRun is first validated
// against crds/ (errors name the field) and handed over as JSON with the schema's defaults.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Command } from "commander";
import { EXIT, runMain } from "../../../lib/run-main.js";
import { readTrainingRun } from "../../../lib/run-config.js";
import { DEFAULT_PYTHON, learnerEnv, learnerPaths } from "./client.js";

/** Pure: finds `--run-config X` / `--run-config=X` in argv; returns its value and index. */
export function findRunConfig(args: string[]): { path: string; index: number; inline: boolean } | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--run-config" && i + 1 < args.length)
      return { path: args[i + 1]!, index: i + 1, inline: false };
    if (a.startsWith("--run-config="))
      return { path: a.slice("--run-config=".length), index: i, inline: true };
  }
  return null;
}

async function main(args: string[]): Promise<void> {
  const argv = [...args];
  let tmp: string | undefined;
  const rc = findRunConfig(argv);
  if (rc) {
    const run = readTrainingRun(rc.path); // throws InvalidArgument naming the file and field
    tmp = mkdtempSync(join(tmpdir(), "l0-learner-"));
    const file = join(tmp, "run.json");
    writeFileSync(file, JSON.stringify(run));
    argv[rc.index] = rc.inline ? `--run-config=${file}` : file;
  }
  const python = process.env.L0_PYTHON ?? DEFAULT_PYTHON;
  const child = spawn(python, ["-m", "learner", ...argv], {
    env: learnerEnv(learnerPaths(), process.env),
    stdio: "inherit",
  });
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => child.kill(sig));
  const code = await new Promise<number>((resolve) => {
    child.once("error", (err) => {
      // A missing interpreter is a missing dependency of this machine: not retried.
      process.stderr.write(`l0 learner: cannot run ${python} (L0_PYTHON): ${err.message}\n`);
      resolve(EXIT.config);
    });
    child.once("exit", (c, signal) => resolve(c ?? (signal ? 128 + 15 : 1)));
  });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  process.exit(code);
}

export function register(program: Command): void {
  program
    .command("learner")
    .description(
      "Run the PyTorch learner: the Learner gRPC service and, on the CPU path, the OpenAI-compatible engine",
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument("[flags...]", "flags of the Python learner (see `l0 learner --help`)")
    .action(async (flags: string[]) => {
      await runMain("learner", () => main(flags));
    });
}
