// One sandboxed Python kernel process: spawns it from the spec, speaks the framed channel, runs
// cells under a deadline the worker keeps by its own clock, proxies tool calls, and turns every
// way a kernel can end (timeout, OOM, CPU limit, protocol violation, crash) into a typed result,
// never a throw. The kernel is hostile: it may only speak when asked, once per request, within
// per-request bounds; anything else kills it, and no frame can stall the worker's event loop.
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { type Readable, type Writable } from "node:stream";
import { CGROUP_JOIN_EXIT, OOM_ADJ_EXIT, bwrapArgs } from "./bwrap.js";
import { type CgroupLayout, type KernelCgroup, createKernelCgroup } from "./cgroup.js";
import {
  type ChannelLimits,
  FrameDecoder,
  type KernelFrame,
  type Notepad,
  type ResultFrame,
  channelLimits,
  encodeFrame,
} from "./framing.js";
import { type ProcRef, childrenOf, descendants, procRef, running, sigkill, stillThere } from "./proctree.js";
import { footprintBytes } from "./memory.js";
import { type SandboxSpec } from "./spec.js";
import {
  type CellResult,
  type Death,
  type DeathKind,
  exitReason,
  failed,
  fmt,
  resultOf,
} from "./cell-result.js";
import { type ToolHandler, ToolCalls } from "./tools-proxy.js";

export type { ToolHandler } from "./tools-proxy.js";
export type { CellOutcome, CellResult } from "./cell-result.js";
export interface KernelOptions {
  spec: SandboxSpec;
  cgroups: CgroupLayout;
  /** Unique among live kernels (names the cgroup). */
  name: string;
  startTimeoutMs?: number;
}

/** Grace after the cell's deadline for the kernel's own interrupt before the kernel is killed. */
export const HARD_KILL_GRACE_MS = 1500;
/** How long kill() waits for bwrap to exit once the sandbox's init is dead. */
const EXIT_WAIT_MS = 5000;
/** kernel.py's output budget until init() says otherwise. */
const DEFAULT_BUDGET_CHARS = 8192;

export class KernelStartError extends Error {}

/** What the kernel is allowed to send right now: the answer to one request, within bounds. */
interface Request {
  frames: number;
  bytes: number;
  onFrame(f: KernelFrame): void;
  onDeath(d: Death): void;
}

type Child = ChildProcessByStdio<Writable, Readable, Readable>;

export class Kernel {
  readonly name: string;
  readonly startedMs: number;
  #child: Child;
  #cgroup: KernelCgroup | null;
  #limits: ChannelLimits = channelLimits(DEFAULT_BUDGET_CHARS);
  #decoder = new FrameDecoder(this.#limits.maxFrameBytes, this.#limits.maxText);
  #req: Request | null = null;
  #death: Death | null = null;
  #exit: { code: number | null; signal: string | null } | null = null;
  #exited: Promise<void>;
  #stderr = "";
  /** The sandbox's pid 1 and the Python kernel under it, found once the kernel is ready. */
  #init: ProcRef | null = null;
  #python: number | null = null;

  private constructor(name: string, child: Child, cgroup: KernelCgroup | null) {
    this.name = name;
    this.startedMs = Date.now();
    this.#child = child;
    this.#cgroup = cgroup;
    child.stdout.on("data", (chunk: Buffer) => this.#onData(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      if (this.#stderr.length < 4096) this.#stderr += chunk.toString("utf8").slice(0, 4096);
    });
    // EPIPE on a dead kernel's stdin is expected; the exit is what reports it.
    child.stdin.on("error", () => undefined);
    this.#exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.#exit = { code, signal };
        this.#die({ kind: "exit", detail: this.#exitReason() });
        resolve();
      });
      child.on("error", (err) => {
        this.#die({ kind: "exit", detail: `the kernel could not be run: ${err.message}` });
        if (child.pid === undefined) resolve(); // never spawned: there will be no exit
      });
    });
  }

  /** Spawns the kernel and waits for its `ready` frame (rlimits applied, channel up). */
  static async start(opts: KernelOptions): Promise<Kernel> {
    // The cgroup must exist before the command that joins it is built.
    const cgroup =
      opts.cgroups.pidsParent || opts.cgroups.memoryParent
        ? createKernelCgroup(opts.cgroups, opts.name, opts.spec.limits)
        : null;
    let child: Child;
    const bpf = opts.spec.seccomp ? openSync(opts.spec.seccomp, "r") : null;
    try {
      const cmd = bwrapArgs({ ...opts.spec, cgroupProcs: cgroup?.procs ?? [] });
      // stdio[3] is bwrap's --seccomp descriptor; the kernel closes whatever reaches it beyond.
      const stdio = bpf === null ? "pipe" : (["pipe", "pipe", "pipe", bpf] as const);
      child = spawn(cmd.file, cmd.args, { stdio: stdio as "pipe", env: {} }) as Child;
    } catch (err) {
      await cgroup?.destroy();
      throw err;
    } finally {
      if (bpf !== null) closeSync(bpf);
    }
    const k = new Kernel(opts.name, child, cgroup);
    const why = await k.#awaitReady(opts.startTimeoutMs ?? 10_000);
    if (why !== null) {
      await k.kill();
      throw new KernelStartError(`kernel ${opts.name} did not start: ${why}; stderr: ${k.#stderr.trim()}`);
    }
    return k;
  }

  get alive(): boolean {
    return this.#death === null;
  }

  /** Host pids of the kernel's processes (bwrap and everything under it), for RSS accounting. */
  pids(): number[] {
    const root = this.#child.pid;
    return root === undefined || this.#exit ? [] : [root, ...descendants(root)];
  }

  /** Memory the kernel holds: its processes' resident memory and its tmpfs mounts' contents. */
  footprintBytes(): number {
    return footprintBytes(this.pids(), this.#python);
  }

  /** Kills the kernel's tree for a reason of the worker's (its pending cell reports that reason). */
  evict(reason: string): void {
    this.#condemn("stopped", reason);
  }

  /**
   * Tools, notepad, output budget and the task's text (bound to `task` in the kernel, so code can
   * work on the question without copying it token by token) for the episode that takes this
   * kernel. No reply; the channel's bounds follow the budget.
   */
  init(tools: string[], notepad: Notepad | null, budgetChars: number, task = ""): void {
    this.#limits = channelLimits(budgetChars);
    this.#decoder.maxFrameBytes = this.#limits.maxFrameBytes;
    this.#decoder.maxText = this.#limits.maxText;
    this.#send({ t: "init", tools, notepad, budget: budgetChars, task });
  }

  /**
   * Runs one cell. Never throws: every failure is a CellResult. The outcome is the worker's: a
   * result that arrives after the deadline is a timeout whatever it says, and no result by the
   * deadline plus a grace kills the kernel, tool call in flight or not.
   */
  execute(code: string, opts: { timeoutMs: number; onTool: ToolHandler }): Promise<CellResult> {
    const t0 = performance.now();
    const seconds = (): number => (performance.now() - t0) / 1000;
    if (this.#death) return Promise.resolve(failed(this.#death, 0));
    return new Promise((resolve) => {
      const nonce = randomUUID();
      // Tool calls are rare: their bookkeeping (and its deadline timer) exists only once one comes.
      let calls: ToolCalls | null = null;
      const settle = (r: CellResult): void => {
        clearTimeout(hard);
        calls?.close();
        if (this.#req === req) this.#req = null;
        resolve(r);
      };
      const req: Request = {
        frames: 0,
        bytes: 0,
        onFrame: (f) => {
          if (f.t === "tool") {
            calls ??= new ToolCalls(
              opts.onTool,
              (msg) => {
                if (this.#req === req) this.#send(msg);
              },
              t0 + opts.timeoutMs,
              `the cell passed its ${fmt(opts.timeoutMs)} deadline`,
            );
            return calls.call(f);
          }
          if (f.t !== "result") return this.#violate(`an unexpected ${f.t} frame during a cell`);
          if (f.id !== nonce) return this.#violate("a result frame carried another request's nonce");
          this.#req = null;
          settle(this.#cellResult(f, opts.timeoutMs, seconds()));
        },
        onDeath: (d) => settle(failed(d, seconds())),
      };
      this.#req = req;
      this.#send({ t: "exec", id: nonce, code, timeout: opts.timeoutMs / 1000 });
      const hard = setTimeout(
        () =>
          this.#condemn(
            "deadline",
            `the cell did not stop at its ${fmt(opts.timeoutMs)} deadline and the kernel was killed`,
          ),
        opts.timeoutMs + HARD_KILL_GRACE_MS,
      );
    });
  }

  /**
   * Kills the kernel's whole process tree, waits until it is gone and removes its cgroups.
   * Idempotent. Resolves false when something of the tree may have survived (logged by the pool).
   */
  async kill(): Promise<boolean> {
    this.#condemn("stopped", "the kernel was stopped by the worker");
    if (!(await this.#waitExit(EXIT_WAIT_MS))) {
      if (this.#child.pid !== undefined) sigkill(this.#child.pid);
      await this.#exited;
    }
    // The namespace is empty once its init has exited (the Linux kernel kills and waits for
    // every other process first). When the kernel ended by itself, bwrap exits as soon as the
    // init reports the exit status, just before the init exits (then orphaned: a PID-1 worker
    // needs a real init such as tini to reap it); it dies with its parent, so wait for that.
    const initGone = !this.#init || (await gone(this.#init));
    const cg = this.#cgroup;
    this.#cgroup = null;
    const cgroupLeft = cg ? await cg.destroy() : 0;
    return initGone && cgroupLeft === 0;
  }

  #awaitReady(timeoutMs: number): Promise<string | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => this.#condemn("stopped", `it was not ready within ${fmt(timeoutMs)}`),
        timeoutMs,
      );
      this.#req = {
        frames: 0,
        bytes: 0,
        onFrame: (f) => {
          if (f.t !== "ready") return this.#violate(`its first frame was ${f.t}, not ready`);
          clearTimeout(timer);
          this.#req = null;
          this.#locate();
          resolve(null);
        },
        onDeath: (d) => {
          clearTimeout(timer);
          const code = this.#exit?.code;
          resolve(
            code === CGROUP_JOIN_EXIT
              ? "could not join the kernel's cgroup"
              : code === OOM_ADJ_EXIT
                ? "could not raise the kernel's oom_score_adj"
                : d.detail,
          );
        },
      };
    });
  }

  /** Finds the sandbox's init (bwrap's child) and the Python kernel (the init's child). */
  #locate(): void {
    const outer = this.#child.pid;
    const init = outer === undefined ? undefined : childrenOf(outer)[0];
    this.#init = init === undefined ? null : procRef(init);
    this.#python = init === undefined ? null : (childrenOf(init)[0] ?? null);
  }

  /** Every chunk is checked against the request it answers before any of it is buffered. */
  #onData(chunk: Buffer): void {
    if (this.#death) return;
    const req = this.#req;
    if (!req) return this.#violate(`${chunk.length} bytes arrived outside any request`);
    req.bytes += chunk.length;
    if (req.bytes > this.#limits.maxBytesPerRequest)
      return this.#violate(`more than ${this.#limits.maxBytesPerRequest} bytes in one request`);
    let frames: KernelFrame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      return this.#violate((err as Error).message);
    }
    for (const f of frames) {
      const r = this.#req;
      if (!r) return this.#violate(`a ${f.t} frame followed the answer to its request`);
      if (++r.frames > this.#limits.maxFramesPerRequest)
        return this.#violate(`more than ${this.#limits.maxFramesPerRequest} frames in one request`);
      r.onFrame(f);
      if (this.#death) return;
    }
    if (!this.#req && this.#decoder.pendingBytes > 0) this.#violate("bytes followed the answer to a request");
  }

  #cellResult(f: ResultFrame, timeoutMs: number, seconds: number): CellResult {
    const r = resultOf(f, timeoutMs, seconds);
    if (r.outcome === "timeout" && !this.#killStrays()) {
      this.#condemn("stopped", `${r.detail}; what it started could not be stopped, so the kernel was killed`);
      return { ...r, kernelAlive: false, detail: this.#death!.detail };
    }
    return r;
  }

  /**
   * Kills every process of the sandbox but its init and the kernel: what a timed-out cell left
   * running would otherwise burn CPU for the rest of the episode. Passes catch forks in flight
   * (a process with SIGKILL pending cannot fork). False when the tree cannot be read.
   */
  #killStrays(): boolean {
    if (!this.#init || this.#python === null || !stillThere(this.#init)) return false;
    for (let pass = 0; pass < 3; pass++) {
      const strays = descendants(this.#init.pid).filter((p) => p !== this.#python);
      if (strays.length === 0) break;
      strays.forEach(sigkill);
    }
    return true;
  }

  #violate(reason: string): void {
    this.#condemn("violation", `the kernel broke the channel protocol (${reason}) and was killed`);
  }

  /** The first reason a kernel ends is the one reported; the tree is killed at once. */
  #condemn(kind: DeathKind, detail: string): void {
    if (this.#death) return;
    this.#die({ kind, detail });
    // The sandbox's init takes its whole pid namespace with it; bwrap then reaps it and exits,
    // so no orphan is left for a worker that runs as PID 1. Without a known init, bwrap itself.
    // bwrap must outlive its init to reap it: the cgroup (bwrap is in it) is killed only after.
    const init = this.#init ?? this.#findInit();
    if (init && stillThere(init)) sigkill(init.pid);
    else if (this.#child.pid !== undefined && !this.#exit) sigkill(this.#child.pid);
  }

  #findInit(): ProcRef | null {
    const outer = this.#child.pid;
    const init = outer === undefined || this.#exit ? undefined : childrenOf(outer)[0];
    return init === undefined ? null : procRef(init);
  }

  #die(d: Death): void {
    if (this.#death) return;
    this.#death = d;
    this.#child.stdout.removeAllListeners("data");
    this.#child.stdout.destroy();
    const req = this.#req;
    this.#req = null;
    req?.onDeath(d);
  }

  #waitExit(ms: number): Promise<boolean> {
    if (this.#exit || this.#child.pid === undefined) return this.#exited.then(() => true);
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.#exited.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
    ]).finally(() => clearTimeout(timer));
  }

  #exitReason(): string {
    return exitReason(this.#exit, (this.#cgroup?.oomKills() ?? 0) > 0);
  }

  #send(msg: unknown): void {
    if (!this.#death) this.#child.stdin.write(encodeFrame(msg));
  }
}

/** Waits (bounded) until the process is dead, killing it again half way. */
async function gone(ref: ProcRef): Promise<boolean> {
  for (let i = 0; i < 200 && running(ref); i++) {
    if (i === 100) sigkill(ref.pid);
    await new Promise((r) => setTimeout(r, 5));
  }
  return !running(ref);
}
