// Runs a subcommand's main: bad configuration exits 2 with the field named, anything
// else unexpected exits 1 with the error. Only code under cli/ and each component's
// main calls process.exit.
import { existsSync, writeFileSync } from "node:fs";
import { isL0Error, L0Error } from "../lib/errors.js";

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
      process.exit(2);
    }
    // A known failure (e.g. strict sandbox mode on a host without a pids cgroup) is one line: its
    // message says what to do; a stack trace would only bury it.
    if (isL0Error(err, "FailedPrecondition")) {
      process.stderr.write(`l0 ${command}: ${err.reason}: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(
      `l0 ${command}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}
