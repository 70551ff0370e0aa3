// How `l0 local` watches its processes: an exit is classified (configuration: stop the run;
// crash: start it again), reported with the last lines of the component's log, and ports are
// picked where no port-0 bind of the run's own processes can take them. Pure decisions with
// table tests; the little I/O (a log's tail, a trial bind) sits at the bottom.
import { closeSync, openSync, readSync, fstatSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { EXIT } from "../lib/run-main.js";

export type ExitAction = "ignore" | "stop-run" | "restart" | "give-up";

/**
 * Pure: what to do when a supervised process exits. Its configuration or input (EXIT.config)
 * stops the run (a restart would fail the same way); a crash is restarted up to `maxRestarts`.
 */
export function exitAction(
  code: number | null,
  over: boolean,
  restarts: number,
  maxRestarts: number,
): ExitAction {
  if (over) return "ignore";
  if (code === EXIT.config) return "stop-run";
  return restarts < maxRestarts ? "restart" : "give-up";
}

/** Pure: a log line as a person reads it: a JSON record becomes `level message key=value ...`. */
export function readableLine(line: string, max = 300): string {
  let text = line.trim();
  try {
    const rec = JSON.parse(text) as Record<string, unknown>;
    if (rec && typeof rec === "object" && typeof rec.message === "string") {
      const { level, message, timestamp: _t, component: _c, ...rest } = rec;
      const fields = Object.entries(rest).map(
        ([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`,
      );
      text = [level, message, ...fields].filter(Boolean).join(" ");
    }
  } catch {
    // plain text (a program's one-line reason on stderr)
  }
  return text.length > max ? text.slice(0, max - 3) + "..." : text;
}

/** Pure: the report of an exit: which component, the code, its last log lines, and the log. */
export function exitReport(
  name: string,
  code: number | null,
  tail: string[],
  logFile: string,
  then: string,
): string {
  // A program's own one-line reason (lib/run-main.ts writes `l0 <command>: ...` last) says it all.
  const last = tail.at(-1);
  const shown = last?.startsWith("l0 ") ? [last] : tail;
  const lines = shown.map((l) => `    | ${readableLine(l)}`);
  const why =
    code === EXIT.config
      ? `stopped on its configuration or input (exit code ${code})`
      : `exited with code ${code}`;
  return [`l0 local: ${name} ${why}; ${then}`, ...lines, `    log: ${logFile}`].join("\n");
}

/** The last `n` non-empty lines of a file (its last 64 KiB), [] when it cannot be read. */
export function logTail(file: string, n = 3): string[] {
  try {
    const fd = openSync(file, "r");
    try {
      const size = fstatSync(fd).size;
      const len = Math.min(size, 65_536);
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, size - len);
      return buf
        .toString("utf8")
        .split("\n")
        .filter((l) => l.trim())
        .slice(-n);
    } finally {
      closeSync(fd);
    }
  } catch {
    return [];
  }
}

export interface WarmProgress {
  step: number;
  steps: number;
  loss?: number;
}

/** Pure: the warm start's progress from the trainer log's text (the learner's records), if it runs. */
export function warmProgress(logText: string): WarmProgress | undefined {
  let found: WarmProgress | undefined;
  for (const line of logText.split("\n")) {
    if (!line.includes('"supervised ')) continue;
    try {
      const r = JSON.parse(line) as { message?: string; step?: number; steps?: number; loss?: number };
      if (r.message === "supervised warm-start" && typeof r.steps === "number")
        found = { step: 0, steps: r.steps };
      else if (r.message === "supervised step" && typeof r.step === "number" && typeof r.steps === "number")
        found = { step: r.step, steps: r.steps, loss: r.loss };
    } catch {
      // not a record
    }
  }
  return found;
}

/** The warm start's progress from the trainer's log file (its last 64 KiB). */
export function readWarmProgress(logFile: string): WarmProgress | undefined {
  try {
    const text = readFileSync(logFile, "utf8");
    return warmProgress(text.slice(-65_536));
  } catch {
    return undefined;
  }
}

/**
 * Pure: the port range `l0 local` picks from: just below the kernel's ephemeral range, so a port
 * picked for the hub is never handed to a bind(0) or an outgoing connection of the run's own
 * processes (the learner, the engine, kernels) before the hub binds it, on any restart.
 */
export function pickRange(ephemeralLow: number): [number, number] {
  const hi = Math.max(2048, ephemeralLow - 1);
  return [Math.max(1024, hi - 8191), hi];
}

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}

const canBind = (port: number): Promise<boolean> =>
  new Promise((res) => {
    const s = createServer();
    s.once("error", () => res(false));
    s.listen(port, "127.0.0.1", () => s.close(() => res(true)));
  });

/** Free ports (none of `taken`) below the ephemeral range, each checked by a trial bind. */
export async function freePorts(count: number, taken: ReadonlySet<number> = new Set()): Promise<number[]> {
  const [lo, hi] = pickRange(ephemeralLow());
  const out: number[] = [];
  for (let tries = 0; out.length < count; tries++) {
    if (tries > 1000) throw new Error(`l0 local: no free port in ${lo}-${hi}`);
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (taken.has(port) || out.includes(port)) continue;
    if (await canBind(port)) out.push(port);
  }
  return out;
}

/** Pure: the progress line during the warm start. */
export function warmLine(w: WarmProgress, elapsedMs: number): string {
  const loss = w.loss === undefined ? "" : ` | loss ${w.loss.toFixed(3)}`;
  return `warm start ${w.step}/${w.steps}${loss} | elapsed ${Math.round(elapsedMs / 1000)}s`;
}
