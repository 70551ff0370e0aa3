// A kernel's processes as the worker sees them in /proc: bwrap (the worker's child) -> the
// sandbox's init (pid 1 of its pid namespace) -> the Python kernel -> whatever agent code starts.
// Killing that init takes every process of the namespace with it (the Linux kernel guarantees
// it), and bwrap only exits once the namespace is empty: that is how a kernel's whole tree is
// killed and known to be gone without cgroups, and without orphans for a PID 1 worker to reap.
import { readFileSync, readdirSync } from "node:fs";

/** Children of every thread of `pid` (a child started from a thread is listed under that thread). */
export function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" "))
        if (c.trim()) out.push(Number(c));
    } catch {
      // The thread ended, or its children are not ours to read.
    }
  }
  return out;
}

/** All descendants of `pid` (not itself), breadth first, at most `max` of them. */
export function descendants(pid: number, max = 4096): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && out.length < max) {
    for (const c of childrenOf(queue.shift()!)) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Fields of /proc/PID/stat after the command name (state first), or null when it is gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from its last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/**
 * Start time of a process (clock ticks since boot, /proc/PID/stat field 22), to tell a process
 * from a later one that reuses its pid; null when there is no such process.
 */
export function startTime(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[19]) : null;
}

/** A process identity that survives pid reuse. */
export interface ProcRef {
  pid: number;
  start: number;
}

export const procRef = (pid: number): ProcRef | null => {
  const start = startTime(pid);
  return start === null ? null : { pid, start };
};

/** Whether the very process `ref` names still exists (a zombie counts until it is reaped). */
export const stillThere = (ref: ProcRef): boolean => startTime(ref.pid) === ref.start;

/** Whether the very process `ref` names still runs: gone, reused or a zombie all mean dead. */
export function running(ref: ProcRef): boolean {
  const f = statFields(ref.pid);
  return f !== null && Number(f[19]) === ref.start && f[0] !== "Z";
}

/** Sends SIGKILL, ignoring a process that is already gone. */
export function sigkill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Gone.
  }
}
