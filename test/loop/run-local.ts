// Starts `node bin/l0.js local -f <file> --run-dir <dir> --progress plain` for the end-to-end
// tests, collecting its output; `done` resolves with the exit code.
import { type ChildProcess, spawn } from "node:child_process";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..", "..");

export interface LocalRun {
  proc: ChildProcess;
  out: () => string;
  done: Promise<number | null>;
}

export function startLocal(
  file: string,
  runDir: string,
  opts: { args?: string[]; env?: NodeJS.ProcessEnv } = {},
): LocalRun {
  let out = "";
  const proc = spawn(
    process.execPath,
    [
      join(ROOT, "bin", "l0.js"),
      "local",
      "-f",
      file,
      "--run-dir",
      runDir,
      "--progress",
      "plain",
      ...(opts.args ?? []),
    ],
    { env: { ...process.env, ...opts.env } },
  );
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  return { proc, out: () => out, done };
}
