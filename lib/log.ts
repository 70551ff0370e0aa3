// Logger factory shared by every program: JSON lines when stdout is not a terminal (pods,
// log files), readable lines on a terminal. Context goes in fields, never in the message.
import winston from "winston";

export type Logger = winston.Logger;
export type LogFormat = "json" | "pretty" | "auto";
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** Program or component name, e.g. "hub", "worker", "operator". */
  component: string;
  level?: LogLevel;
  format?: LogFormat;
  /** Extra fixed fields on every line, e.g. `{ run: "ns/name" }`. */
  fields?: Record<string, unknown>;
  /** Where lines go; defaults to stderr so stdout stays free for program output. */
  stream?: NodeJS.WritableStream;
  /** Whether the stream is a terminal (decides "auto"); defaults to process.stderr.isTTY. */
  isTTY?: boolean;
}

const pretty = winston.format.printf((info) => {
  const { level, message, timestamp, component, ...rest } = info as Record<string, unknown>;
  const fields = Object.entries(rest)
    .filter(([k]) => typeof k === "string")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${String(timestamp).slice(11, 23)} ${level} [${String(component)}] ${String(message)}${fields ? " " + fields : ""}`;
});

export function createLogger(opts: LoggerOptions): Logger {
  const format = opts.format ?? "auto";
  const tty = opts.isTTY ?? Boolean(process.stderr.isTTY);
  const usePretty = format === "pretty" || (format === "auto" && tty);
  return winston.createLogger({
    level: opts.level ?? "info",
    defaultMeta: { component: opts.component, ...opts.fields },
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: true }),
      usePretty ? winston.format.combine(winston.format.colorize(), pretty) : winston.format.json(),
    ),
    transports: [new winston.transports.Stream({ stream: opts.stream ?? process.stderr })],
  });
}

/** A logger that drops everything, for tests and library callers that pass none. */
export function silentLogger(): Logger {
  return winston.createLogger({
    silent: true,
    transports: [new winston.transports.Console({ silent: true })],
  });
}

/** Error fields for a log line: message and stack, never the whole object graph. */
export function errorFields(err: unknown): { error: string; stack?: string } {
  if (err instanceof Error) return { error: err.message, stack: err.stack };
  return { error: String(err) };
}
