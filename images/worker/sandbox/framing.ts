// The kernel channel's framing: 4-byte big-endian length, then UTF-8 JSON. The decoder is the
// boundary with hostile code (agent code can write to the channel fd), so every frame is
// size-capped and shape-checked; anything else is a protocol violation, never a crash.

export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

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
  id: number;
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
export type KernelFrame = { t: "ready"; pid: number } | { t: "pong" } | ToolFrame | ResultFrame;

export class ProtocolError extends Error {}

const str = (v: unknown, max: number): string | null =>
  typeof v === "string" ? v.slice(0, max) : v === null || v === undefined ? null : null;

/** Shape-checks a decoded frame; throws ProtocolError naming what is wrong. */
export function checkFrame(raw: unknown, maxText: number): KernelFrame {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new ProtocolError("frame is not a JSON object");
  const o = raw as Record<string, unknown>;
  const id = (): number => {
    if (typeof o.id !== "number" || !Number.isSafeInteger(o.id))
      throw new ProtocolError("frame.id: not an integer");
    return o.id;
  };
  switch (o.t) {
    case "ready":
      return { t: "ready", pid: typeof o.pid === "number" ? o.pid : 0 };
    case "pong":
      return { t: "pong" };
    case "tool":
      if (typeof o.name !== "string") throw new ProtocolError("tool.name: not a string");
      return { t: "tool", id: id(), name: o.name.slice(0, 64), arg: str(o.arg, 4000) ?? "" };
    case "result": {
      const np = (o.notepad ?? {}) as Record<string, unknown>;
      const list = (v: unknown): string[] =>
        Array.isArray(v) ? v.slice(-50).map((x) => String(x).slice(0, 4000)) : [];
      return {
        t: "result",
        id: id(),
        ok: o.ok === true,
        timedOut: o.timedOut === true,
        stdout: str(o.stdout, maxText) ?? "",
        stderr: str(o.stderr, maxText) ?? "",
        result: str(o.result, maxText),
        error: str(o.error, maxText),
        truncated: typeof o.truncated === "number" && o.truncated >= 0 ? Math.floor(o.truncated) : 0,
        final: str(o.final, 10_000),
        notepad: { facts: list(np.facts), todo: list(np.todo), draft: String(np.draft ?? "").slice(0, 4000) },
      };
    }
    default:
      throw new ProtocolError(`frame.t: unknown type ${JSON.stringify(o.t)?.slice(0, 40)}`);
  }
}

/** Incremental decoder: feed it chunks, get whole frames; throws ProtocolError on bad input. */
export class FrameDecoder {
  #buf: Buffer = Buffer.alloc(0);
  constructor(
    private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
    private readonly maxText = 1 << 20,
  ) {}

  push(chunk: Buffer): KernelFrame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: KernelFrame[] = [];
    while (this.#buf.length >= 4) {
      const n = this.#buf.readUInt32BE(0);
      if (n > this.maxFrameBytes)
        throw new ProtocolError(`frame of ${n} bytes exceeds the ${this.maxFrameBytes}-byte cap`);
      if (this.#buf.length < 4 + n) break;
      const body = this.#buf.subarray(4, 4 + n);
      this.#buf = this.#buf.subarray(4 + n);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        throw new ProtocolError("frame is not valid JSON");
      }
      out.push(checkFrame(parsed, this.maxText));
    }
    return out;
  }

  get pendingBytes(): number {
    return this.#buf.length;
  }
}
