// What one cell did, as the episode sees it: the typed result of a kernel's answer (its outcome
// decided by the worker's clock, not by what the answer says) or of the way the kernel ended.
import { type Notepad, type ResultFrame } from "./framing.js";

export type CellOutcome = "ok" | "error" | "timeout" | "killed";

/** What one cell did. `kernelAlive` false means the namespace is gone (a fresh kernel is needed). */
export interface CellResult {
  outcome: CellOutcome;
  stdout: string;
  stderr: string;
  result: string | null;
  error: string | null;
  truncatedBytes: number;
  finalAnswer: string | null;
  notepad: Notepad | null;
  seconds: number;
  kernelAlive: boolean;
  /** Why the kernel was stopped or died, in words, e.g. "killed after 10 s wall clock". */
  detail: string;
  /** The kernel broke the channel protocol: nothing it reported in its life can be trusted. */
  violation: boolean;
}

export type DeathKind = "violation" | "deadline" | "exit" | "stopped";
export interface Death {
  kind: DeathKind;
  detail: string;
}

const BASE = { stdout: "", stderr: "", result: null, error: null, truncatedBytes: 0, finalAnswer: null };

/**
 * The result of a kernel's answer. The kernel's own interrupt is a courtesy that keeps its state;
 * the worker's clock decides: an answer that arrives after the deadline is a timeout whatever it
 * says (an `except BaseException` around a blocking call no longer turns a timeout into "ok").
 */
export function resultOf(f: ResultFrame, timeoutMs: number, seconds: number): CellResult {
  const late = f.timedOut || seconds * 1000 >= timeoutMs;
  return {
    outcome: late ? "timeout" : f.ok ? "ok" : "error",
    stdout: f.stdout,
    stderr: f.stderr,
    result: f.result,
    error: f.error,
    truncatedBytes: f.truncated,
    finalAnswer: f.final,
    notepad: f.notepad,
    seconds,
    kernelAlive: true,
    violation: false,
    detail: !late
      ? ""
      : f.timedOut
        ? `the cell was interrupted at its ${fmt(timeoutMs)} deadline`
        : `the cell ran past its ${fmt(timeoutMs)} deadline`,
  };
}

/** The result of a cell whose kernel ended before answering. */
export function failed(d: Death, seconds: number): CellResult {
  return {
    ...BASE,
    notepad: null,
    outcome: d.kind === "deadline" ? "timeout" : "killed",
    seconds,
    kernelAlive: false,
    violation: d.kind === "violation",
    detail: d.detail,
  };
}

/** Why a kernel's process ended, in words, from its exit status (and the cgroup's OOM count). */
export function exitReason(
  e: { code: number | null; signal: string | null } | null,
  oomKilled: boolean,
): string {
  if (oomKilled) return "the kernel was killed by the out-of-memory killer (memory limit)";
  if (!e) return "the kernel stopped answering";
  // bwrap exits with 128 + signal when the kernel was killed by one.
  const sig = e.signal ?? (e.code !== null && e.code > 128 ? signalName(e.code - 128) : null);
  if (sig === "SIGXCPU") return "the kernel used up its CPU-time limit and was killed";
  if (sig) return `the kernel was killed by ${sig}`;
  return `the kernel exited with code ${e.code}`;
}

const SIGNALS: Record<number, string> = {
  6: "SIGABRT",
  9: "SIGKILL",
  11: "SIGSEGV",
  15: "SIGTERM",
  24: "SIGXCPU",
  25: "SIGXFSZ",
};
const signalName = (n: number): string => SIGNALS[n] ?? `signal ${n}`;
export const fmt = (ms: number): string => `${Number((ms / 1000).toFixed(1))} s`;
