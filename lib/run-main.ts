// Runs a subcommand's main with the exit codes every `l0` program shares (EXIT, README "Exit
// codes"): bad configuration or input exits 2 with one line naming the field (never retried by
// `l0 local` or the operator), anything else 1 with the error (a crash: retried). Only this file,
// the commands' entry points and shutdown call process.exit.
import { existsSync, writeFileSync } from "node:fs";
import { isL0Error, L0Error } from "./errors.js";

/** Exit codes of every `l0` program. */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** A crash or an unexpected error: a supervisor may retry. */
  failure: 1,
  /** Usage, configuration or input (a bad flag or field, a missing file or dependency): not retried. */
  config: 2,
  /** Killed on a second Ctrl-C (128 + SIGINT). */
  interrupted: 130,
} as const;

/** Where Kubernetes reads a container's termination message (it mounts the file; absent elsewhere). */
export const TERMINATION_LOG = "/dev/termination-log";

/**
 * `Reason: message` into the termination log, when the file is there (in a pod), so the operator
 * can put why the program ended into the run's conditions. Kubernetes keeps 4096 bytes of it.
 */
export function writeTerminationMessage(err: unknown, path = TERMINATION_LOG): void {
  if (!existsSync(path)) return;
  const reason = err instanceof L0Error ? err.reason : "Error";
  const text = `${reason}: ${err instanceof Error ? err.message : String(err)}`;
  try {
    writeFileSync(path, Buffer.from(text).subarray(0, 4000));
  } catch {
    // best effort: the log still has it
  }
}

export function runMain(command: string, main: () => Promise<void>): Promise<void> {
  return main().catch((err: unknown) => {
    writeTerminationMessage(err);
    if (isL0Error(err, "InvalidArgument")) {
      process.stderr.write(`l0 ${command}: invalid configuration: ${err.message}\n`);
      process.exit(EXIT.config);
    }
    // A known failure (e.g. strict sandbox mode on a host without a pids cgroup) is one line: its
    // message says what to do; a stack trace would only bury it.
    if (isL0Error(err, "FailedPrecondition")) {
      process.stderr.write(`l0 ${command}: ${err.reason}: ${err.message}\n`);
      process.exit(EXIT.failure);
    }
    process.stderr.write(
      `l0 ${command}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(EXIT.failure);
  });
}
