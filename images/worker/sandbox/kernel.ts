// One sandboxed Python kernel process: spawns it from the spec, speaks the framed channel,
// runs cells under a wall-clock deadline, proxies tool calls, and turns every way a kernel can
// die (timeout, OOM, CPU limit, protocol violation, crash) into a typed result, never a throw.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { CGROUP_JOIN_EXIT, bwrapArgs } from "./bwrap.js";
import { type CgroupLayout, type KernelCgroup, createKernelCgroup } from "./cgroup.js";
import { FrameDecoder, type KernelFrame, type Notepad, ProtocolError, encodeFrame } from "./framing.js";
import { type SandboxSpec } from "./spec.js";

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
}

export type ToolHandler = (name: string, arg: string) => Promise<string>;

export interface KernelOptions {
  spec: SandboxSpec;
  cgroups: CgroupLayout;
  /** Unique among live kernels (names the cgroup). */
  name: string;
  startTimeoutMs?: number;
}

const MAX_TOOL_CALLS_PER_CELL = 32;
/** Grace after the in-kernel soft deadline before the whole kernel is killed. */
export const HARD_KILL_GRACE_MS = 1500;

export class KernelStartError extends Error {}

export class Kernel {
  readonly name: string;
  readonly startedMs: number;
  #child: ChildProcessWithoutNullStreams;
  #cgroup: KernelCgroup | null;
  #decoder = new FrameDecoder();
  #waiter: ((f: KernelFrame | Error) => void) | null = null;
  #queue: (KernelFrame | Error)[] = [];
  #exited: Promise<{ code: number | null; signal: string | null }>;
  #exit: { code: number | null; signal: string | null } | null = null;
  #stderr = "";
  #seq = 0;
  #dead = false;

  private constructor(name: string, child: ChildProcessWithoutNullStreams, cgroup: KernelCgroup | null) {
    this.name = name;
    this.startedMs = Date.now();
    this.#child = child;
    this.#cgroup = cgroup;
    child.stdout.on("data", (chunk: Buffer) => {
      if (this.#dead) return;
      try {
        for (const f of this.#decoder.push(chunk)) this.#deliver(f);
      } catch (err) {
        this.#deliver(err as Error);
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (this.#stderr.length < 4096) this.#stderr += chunk.toString("utf8").slice(0, 4096);
    });
    // EPIPE on a dead kernel's stdin is expected; the exit is what reports it.
    child.stdin.on("error", () => undefined);
    this.#exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.#exit = { code, signal };
        this.#dead = true;
        this.#deliver(new Error("exited"));
        resolve(this.#exit);
      });
    });
    child.on("error", (err) => this.#deliver(err));
  }

  /** Spawns the kernel and waits for its `ready` frame (rlimits applied, channel up). */
  static async start(opts: KernelOptions): Promise<Kernel> {
    // The cgroup must exist before the command that joins it is built.
    let cgroup: KernelCgroup | null = null;
    if (opts.cgroups.pidsParent || opts.cgroups.memoryParent) {
      cgroup = createKernelCgroup(opts.cgroups, opts.name, opts.spec.limits);
    }
    const cmd = bwrapArgs({ ...opts.spec, cgroupProcs: cgroup?.procs ?? [] });
    const child = spawn(cmd.file, cmd.args, { stdio: "pipe", env: {} });
    const k = new Kernel(opts.name, child, cgroup);
    const first = await k.#next(opts.startTimeoutMs ?? 10_000);
    if (first instanceof Error || first.t !== "ready") {
      await k.kill();
      const exit = k.#exit;
      const why =
        exit?.code === CGROUP_JOIN_EXIT
          ? "could not join the kernel's cgroup"
          : first instanceof Error
            ? first.message
            : `unexpected first frame ${first.t}`;
      throw new KernelStartError(`kernel ${opts.name} did not start: ${why}; stderr: ${k.#stderr.trim()}`);
    }
    return k;
  }

  get alive(): boolean {
    return !this.#dead;
  }

  /** Host pids in the kernel's cgroups (for RSS accounting), empty without cgroups. */
  pids(): number[] {
    if (!this.#cgroup) return this.#child.pid ? [this.#child.pid] : [];
    const out = new Set<number>();
    for (const p of this.#cgroup.procs) {
      try {
        for (const line of readFileSync(p, "utf8").split("\n")) if (line) out.add(Number(line));
      } catch {
        // Gone.
      }
    }
    return [...out];
  }

  /**
   * Tools, notepad, output budget and the task's text (bound to `task` in the kernel, so code can
   * work on the question without copying it token by token) for the episode that takes this
   * kernel. No reply.
   */
  init(tools: string[], notepad: Notepad | null, budgetChars: number, task = ""): void {
    this.#send({ t: "init", tools, notepad, budget: budgetChars, task });
  }

  async ping(timeoutMs = 2000): Promise<boolean> {
    this.#send({ t: "ping" });
    const f = await this.#next(timeoutMs);
    return !(f instanceof Error) && f.t === "pong";
  }

  /** Runs one cell. Never throws: every failure is a CellResult. */
  async execute(code: string, opts: { timeoutMs: number; onTool: ToolHandler }): Promise<CellResult> {
    const t0 = performance.now();
    const id = ++this.#seq;
    const base = {
      stdout: "",
      stderr: "",
      result: null,
      error: null,
      truncatedBytes: 0,
      finalAnswer: null,
      notepad: null,
    };
    const secs = (): number => (performance.now() - t0) / 1000;
    if (this.#dead)
      return {
        ...base,
        outcome: "killed",
        seconds: 0,
        kernelAlive: false,
        detail: "the kernel had already exited",
      };
    const hardDeadline = Date.now() + opts.timeoutMs + HARD_KILL_GRACE_MS;
    this.#send({ t: "exec", id, code, timeout: opts.timeoutMs / 1000 });
    let tools = 0;
    for (;;) {
      const f = await this.#next(Math.max(1, hardDeadline - Date.now()));
      if (f instanceof Error) {
        const timedOut = f.message === "timeout";
        const oomBefore = this.#cgroup?.oomKills() ?? 0;
        await this.kill();
        const detail = timedOut
          ? `the cell did not stop at its ${fmt(opts.timeoutMs)} deadline and the kernel was killed`
          : f instanceof ProtocolError
            ? `the kernel broke the channel protocol (${f.message}) and was killed`
            : this.#deathReason(oomBefore);
        return {
          ...base,
          outcome: timedOut ? "timeout" : "killed",
          seconds: secs(),
          kernelAlive: false,
          detail,
        };
      }
      if (f.t === "tool") {
        tools++;
        let reply: Record<string, unknown>;
        if (tools > MAX_TOOL_CALLS_PER_CELL)
          reply = {
            t: "tool_result",
            id: f.id,
            ok: false,
            error: `more than ${MAX_TOOL_CALLS_PER_CELL} tool calls in one cell`,
          };
        else {
          try {
            reply = { t: "tool_result", id: f.id, ok: true, value: await opts.onTool(f.name, f.arg) };
          } catch (err) {
            reply = { t: "tool_result", id: f.id, ok: false, error: (err as Error).message };
          }
        }
        this.#send(reply);
        continue;
      }
      if (f.t !== "result" || f.id !== id) continue; // stale or forged frames are ignored
      return {
        outcome: f.timedOut ? "timeout" : f.ok ? "ok" : "error",
        stdout: f.stdout,
        stderr: f.stderr,
        result: f.result,
        error: f.error,
        truncatedBytes: f.truncated,
        finalAnswer: f.final,
        notepad: f.notepad,
        seconds: secs(),
        kernelAlive: true,
        detail: f.timedOut ? `the cell was interrupted at its ${fmt(opts.timeoutMs)} deadline` : "",
      };
    }
  }

  /** Kills the kernel's whole process tree and removes its cgroups. Idempotent. */
  async kill(): Promise<void> {
    if (!this.#dead) this.#child.kill("SIGKILL");
    await this.#exited;
    const cg = this.#cgroup;
    this.#cgroup = null;
    if (cg) await cg.destroy();
  }

  #deathReason(oomBefore: number): string {
    const e = this.#exit;
    const oom = (this.#cgroup?.oomKills() ?? 0) > 0 || oomBefore > 0;
    if (oom) return "the kernel was killed by the out-of-memory killer (memory limit)";
    if (!e) return "the kernel stopped answering";
    // bwrap exits with 128 + signal when the kernel was killed by one.
    const sig = e.signal ?? (e.code !== null && e.code > 128 ? signalName(e.code - 128) : null);
    if (sig === "SIGXCPU") return "the kernel used up its CPU-time limit and was killed";
    if (sig) return `the kernel was killed by ${sig}`;
    return `the kernel exited with code ${e.code}`;
  }

  #send(msg: unknown): void {
    if (!this.#dead) this.#child.stdin.write(encodeFrame(msg));
  }

  #deliver(f: KernelFrame | Error): void {
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = null;
      w(f);
    } else this.#queue.push(f);
  }

  #next(timeoutMs: number): Promise<KernelFrame | Error> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#dead) return Promise.resolve(new Error("exited"));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        resolve(new Error("timeout"));
      }, timeoutMs);
      this.#waiter = (f) => {
        clearTimeout(timer);
        resolve(f);
      };
    });
  }
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
const fmt = (ms: number): string => `${Number((ms / 1000).toFixed(1))} s`;
