// Runs a subcommand's main: bad configuration exits 2 with the field named, anything
// else unexpected exits 1 with the error. Only code under cli/ and each component's
// main calls process.exit.
import { isL0Error } from "../lib/errors.js";

export function runMain(command: string, main: () => Promise<void>): Promise<void> {
  return main().catch((err: unknown) => {
    if (isL0Error(err, "InvalidArgument")) {
      process.stderr.write(`l0 ${command}: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(
      `l0 ${command}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}
