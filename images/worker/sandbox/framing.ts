// The kernel channel's framing: 4-byte big-endian length, then UTF-8 JSON. The decoder is the
// boundary with hostile code (agent code can write to the channel fd), so every frame is
// size-capped and shape-checked and every string that leaves it is well-formed; anything else is
// a protocol violation, never a crash. How many frames a kernel may send, and when, is the
// kernel's business (kernel.ts); this file only knows frames.

export function encodeFrame(msg: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(msg), "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

export interface ToolFrame {
  t: "tool";
  id: number;
  name: string;
  arg: string;
}
export interface ResultFrame {
  t: "result";
  /** The nonce of the request it answers. */
  id: string;
  ok: boolean;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  result: string | null;
  error: string | null;
  truncated: number;
  final: string | null;
  notepad: Notepad;
}
export interface Notepad {
  facts: string[];
  todo: string[];
  draft: string;
}
export type KernelFrame = { t: "ready"; pid: number } | ToolFrame | ResultFrame;

export class ProtocolError extends Error {}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * The text with every lone UTF-16 surrogate replaced by U+FFFD, so it encodes as valid UTF-8
 * (an engine rejects a prompt that does not, and so does protobuf). Visible, never dropped.
 */
export const wellFormed = (s: string): string => s.replace(LONE_SURROGATE, "\uFFFD");

/** Cuts to at most `max` UTF-16 units without splitting a surrogate pair. */
export function cutText(s: string, max: number): string {
  if (s.length <= max) return s;
  const c = s.charCodeAt(max - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? max - 1 : max);
}

const str = (v: unknown, max: number): string | null =>
  typeof v === "string" ? wellFormed(cutText(v, max)) : null;

/** Longest notepad entry, entries per list, final answer (kernel.py keeps the same caps). */
export const NOTE_CHARS = 4000;
export const NOTE_ENTRIES = 50;
export const FINAL_CHARS = 10_000;

/** Shape-checks a decoded frame; throws ProtocolError naming what is wrong. */
export function checkFrame(raw: unknown, maxText: number): KernelFrame {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new ProtocolError("frame is not a JSON object");
  const o = raw as Record<string, unknown>;
  switch (o.t) {
    case "ready":
      return { t: "ready", pid: typeof o.pid === "number" ? o.pid : 0 };
    case "tool":
      if (typeof o.id !== "number" || !Number.isSafeInteger(o.id))
        throw new ProtocolError("tool.id: not an integer");
      if (typeof o.name !== "string") throw new ProtocolError("tool.name: not a string");
      return { t: "tool", id: o.id, name: str(o.name, 64)!, arg: str(o.arg, 4000) ?? "" };
    case "result": {
      if (typeof o.id !== "string" || o.id.length > 64) throw new ProtocolError("result.id: not a nonce");
      const np = (o.notepad ?? {}) as Record<string, unknown>;
      const list = (v: unknown): string[] =>
        Array.isArray(v) ? v.slice(-NOTE_ENTRIES).map((x) => str(String(x), NOTE_CHARS)!) : [];
      return {
        t: "result",
        id: o.id,
        ok: o.ok === true,
        timedOut: o.timedOut === true,
        stdout: str(o.stdout, maxText) ?? "",
        stderr: str(o.stderr, maxText) ?? "",
        result: str(o.result, maxText),
        error: str(o.error, maxText),
        truncated: typeof o.truncated === "number" && o.truncated >= 0 ? Math.floor(o.truncated) : 0,
        final: str(o.final, FINAL_CHARS),
        notepad: {
          facts: list(np.facts),
          todo: list(np.todo),
          draft: str(String(np.draft ?? ""), NOTE_CHARS)!,
        },
      };
    }
    default:
      throw new ProtocolError(`frame.t: unknown type ${JSON.stringify(o.t)?.slice(0, 40)}`);
  }
}

/**
 * Incremental decoder: feed it chunks, get whole frames; throws ProtocolError on bad input. A
 * frame's declared length is checked against the cap as soon as its header is in, so an
 * oversized frame is refused before its body is buffered; chunks are joined once per frame.
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #size = 0;
  /** Body length of the frame being read; -1 while its header is incomplete. */
  #need = -1;

  constructor(
    public maxFrameBytes = channelLimits(8192).maxFrameBytes,
    public maxText = channelLimits(8192).maxText,
  ) {}

  push(chunk: Buffer): KernelFrame[] {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    const out: KernelFrame[] = [];
    for (;;) {
      if (this.#need < 0) {
        if (this.#size < 4) break;
        const n = this.#take(4).readUInt32BE(0);
        if (n > this.maxFrameBytes)
          throw new ProtocolError(`a frame of ${n} bytes exceeds the ${this.maxFrameBytes}-byte cap`);
        this.#need = n;
      }
      if (this.#size < this.#need) break;
      const body = this.#take(this.#need);
      this.#need = -1;
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        throw new ProtocolError("a frame is not valid JSON");
      }
      out.push(checkFrame(parsed, this.maxText));
    }
    return out;
  }

  /** Bytes received that are not part of a whole frame yet (a header counts once read). */
  get pendingBytes(): number {
    return this.#size + (this.#need >= 0 ? 4 : 0);
  }

  #take(n: number): Buffer {
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size);
    const taken = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#size = rest.length;
    return taken;
  }
}

/** What one kernel may send the worker, per request; over any of them the kernel is killed. */
export interface ChannelLimits {
  maxFrameBytes: number;
  /** Tool calls plus the one result. */
  maxFramesPerRequest: number;
  maxBytesPerRequest: number;
  /** Characters kept of each text field of a result (the kernel caps them at its budget). */
  maxText: number;
}

/** Tool calls one cell may make; calls beyond it are answered with an error. */
export const MAX_TOOL_CALLS_PER_CELL = 32;

/**
 * Limits that admit every honest frame of a kernel whose output budget is `budgetChars`: a
 * result holds stdout (printed text and child-process output, each up to the budget), stderr,
 * the value and the error (each up to the budget), the notepad and the final answer, every
 * character at most 6 bytes of JSON (`\u001f`).
 */
export function channelLimits(budgetChars: number): ChannelLimits {
  const maxText = 2 * budgetChars + 256;
  const chars = maxText + 3 * budgetChars + (2 * NOTE_ENTRIES + 1) * NOTE_CHARS + FINAL_CHARS;
  const maxFrameBytes = 6 * chars + (64 << 10);
  return {
    maxFrameBytes,
    maxFramesPerRequest: 2 * MAX_TOOL_CALLS_PER_CELL,
    maxBytesPerRequest: maxFrameBytes + 2 * MAX_TOOL_CALLS_PER_CELL * (32 << 10),
    maxText,
  };
}
