// The adversarial table's shape and the Python snippets hostile cells share (finding the channel,
// framing, reading the running request's nonce, flooding). The table itself is in
// cases-walls.ts (the sandbox's walls, resources, time, output) and cases-channel.ts (processes
// and lifetime, the channel, results); suite.ts runs both.
import { expect } from "chai";
import { type CellResult } from "../../../images/worker/sandbox/kernel.js";

export interface Ctx {
  /** A port listening on the host's 127.0.0.1. */
  port: number;
  /** Set in the worker's environment and in a file the worker holds open (inherited). */
  secret: string;
}

export interface Case {
  name: string;
  code: string | ((ctx: Ctx) => string);
  /** A second cell in the same kernel, for attacks that land between cells. */
  next?: string;
  timeoutMs?: number;
  /** The tool handler answers never (a hanging backend). */
  hangingTools?: boolean;
  check: (r: CellResult, obs: string, ctx: Ctx, next: CellResult | null) => void;
}

export const notOk = (r: CellResult): void => {
  expect(r.outcome, "outcome").to.not.equal("ok");
};
export const violation = (r: CellResult | null, reason: RegExp): void => {
  expect(r, "the cell after").to.not.equal(null);
  expect(r!).to.deep.include({ outcome: "killed", kernelAlive: false, violation: true });
  expect(r!.detail).to.match(/broke the channel protocol/);
  expect(r!.detail).to.match(reason);
  expect(r!.detail).to.not.match(/SIGKILL/);
};

/** Python that finds the channel: every descriptor that takes a write. */
export const writeAll = (bytes: string): string =>
  `for fd in range(3, 12):\n  try: os.write(fd, ${bytes})\n  except OSError: pass\n`;
export const frame = (obj: string): string =>
  `(lambda b: struct.pack('>I', len(b)) + b)(json.dumps(${obj}).encode())`;
/** The running exec request's nonce, read from the kernel's own frame (same interpreter). */
export const NONCE =
  "import sys\ndef nonce():\n  f = sys._getframe()\n  while f:\n    m = f.f_locals.get('msg')\n" +
  "    if isinstance(m, dict) and m.get('t') == 'exec': return m['id']\n    f = f.f_back\n";
/** Floods fd 4, the channel to the worker (fd 3, its input, is a socket nobody writes back on). */
export const FLOOD_THREAD =
  "import os, json, struct, threading, time\n" +
  `tiny = ${frame("{'t': 'tool', 'id': 7, 'name': 'search', 'arg': ''}")} * 512\n` +
  "def flood():\n  time.sleep(0.2)\n  while True: os.write(4, tiny)\n" +
  "threading.Thread(target=flood, daemon=True).start()\n";
