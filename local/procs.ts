// Child processes of `l0 local`: each in its own process group (so a terminal Ctrl-C reaches only
// `l0 local`, which then stops them in order), logs to a file, and a synchronous kill of every
// group on exit so nothing outlives the command.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { type ProcessPlan } from "./plan.js";

export interface Child {
  plan: ProcessPlan;
  process: ChildProcess;
  exited: Promise<number | null>;
}

/** Starts `node <l0> ...plan.args` with the plan's env added, stdout+stderr appended to its log. */
export function startChild(l0Bin: string, plan: ProcessPlan, baseEnv: NodeJS.ProcessEnv): Child {
  mkdirSync(dirname(plan.logFile), { recursive: true });
  const fd = openSync(plan.logFile, "a");
  const child = spawn(process.execPath, [l0Bin, ...plan.args], {
    env: { ...baseEnv, ...plan.env },
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? (signal ? 128 : null)));
    child.once("error", () => resolve(127));
  });
  return { plan, process: child, exited };
}

const alive = (c: Child): boolean => c.process.exitCode === null && c.process.signalCode === null;

/** SIGKILL to the whole process group (the child and anything it started). Synchronous. */
export function killGroup(c: Child): void {
  if (c.process.pid === undefined) return;
  try {
    process.kill(-c.process.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** SIGTERM to the child itself, then SIGKILL to its group after graceMs. */
export async function stopChild(c: Child, graceMs: number): Promise<number | null> {
  if (alive(c)) c.process.kill("SIGTERM");
  const timer = setTimeout(() => killGroup(c), graceMs);
  const code = await c.exited;
  clearTimeout(timer);
  killGroup(c); // grandchildren (the learner, kernels) go with it
  return code;
}

/**
 * The trainer pods' processes as one gang (spec.trainer.nodes): the first (the leader) stands for
 * all. When another fails it kills the leader (the Job's attempt fails as a whole; the others
 * exit 0 when the leader's learner stops them), and the others go when the leader exits.
 */
export function startGang(l0Bin: string, plans: ProcessPlan[], baseEnv: NodeJS.ProcessEnv): Child[] {
  const [lead, ...others] = plans.map((p) => startChild(l0Bin, p, baseEnv));
  for (const o of others) void o.exited.then((code) => code !== 0 && killGroup(lead!));
  void lead!.exited.then(() => others.forEach(killGroup));
  return [lead!, ...others];
}
