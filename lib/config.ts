// Program configuration: one declarative spec per program gives its command-line flags,
// their environment variables, defaults and checks. `main` loads it once; a bad value fails
// with an error naming the flag and the variable. Library code takes the typed result.
import { type Command, Option } from "commander";
import { type FieldViolation, invalidFields } from "./errors.js";
import { LOG_LEVELS } from "./log.js";

interface Base {
  description: string;
  /** Never printed (tokens, keys). */
  secret?: boolean;
}
export type FieldSpec = Base &
  (
    | { type: "string"; default?: string; required?: boolean; pattern?: RegExp }
    | { type: "int"; default?: number; required?: boolean; min?: number; max?: number }
    | { type: "number"; default?: number; required?: boolean; min?: number; max?: number }
    | { type: "bool"; default?: boolean; required?: boolean }
    | { type: "enum"; values: readonly string[]; default?: string; required?: boolean }
    /** "250ms", "10s", "5m", "1h" or a bare number of seconds; the value is milliseconds. */
    | { type: "duration"; default?: string; required?: boolean }
  );
export type ConfigSpec = Record<string, FieldSpec>;

type Base_<F extends FieldSpec> = F extends { type: "string" }
  ? string
  : F extends { type: "int" | "number" | "duration" }
    ? number
    : F extends { type: "bool" }
      ? boolean
      : F extends { type: "enum"; values: readonly (infer V)[] }
        ? V
        : never;
type Value<F extends FieldSpec> = F extends { default: unknown } | { required: true }
  ? Base_<F>
  : Base_<F> | undefined;
export type ConfigOf<S extends ConfigSpec> = { -readonly [K in keyof S]: Value<S[K]> };

/** Identity with type inference, so specs keep their literal types. */
export function defineConfig<const S extends ConfigSpec>(spec: S): S {
  return spec;
}

export const flagName = (key: string): string => "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
export const envName = (prefix: string, key: string): string =>
  prefix + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();

/** Adds one `--flag <value>` per field to a commander command, documenting its variable and default. */
export function addOptions(cmd: Command, spec: ConfigSpec, envPrefix: string): Command {
  for (const [key, f] of Object.entries(spec)) {
    const flag = flagName(key);
    const env = envName(envPrefix, key);
    const opt =
      f.type === "bool"
        ? new Option(`${flag} [bool]`, `${f.description} (env ${env})`)
        : new Option(
            `${flag} <${f.type === "enum" ? f.values.join("|") : f.type}>`,
            `${f.description} (env ${env})`,
          );
    if (f.default !== undefined && !f.secret) opt.default(f.default);
    cmd.addOption(opt);
  }
  return cmd;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string): number | null {
  const m = DURATION.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * UNIT_MS[m[2] ?? "s"]!;
}

function parseValue(f: FieldSpec, raw: unknown): { value?: unknown; problem?: string } {
  const text = typeof raw === "string" ? raw.trim() : raw;
  switch (f.type) {
    case "string": {
      const s = String(text);
      if (f.pattern && !f.pattern.test(s)) return { problem: `must match ${String(f.pattern)}` };
      return { value: s };
    }
    case "int":
    case "number": {
      const n = typeof text === "number" ? text : Number(text);
      if (text === "" || !Number.isFinite(n)) return { problem: `must be a number` };
      if (f.type === "int" && !Number.isInteger(n)) return { problem: `must be an integer` };
      if (f.min !== undefined && n < f.min) return { problem: `must be at least ${f.min}` };
      if (f.max !== undefined && n > f.max) return { problem: `must be at most ${f.max}` };
      return { value: n };
    }
    case "bool": {
      if (text === true || text === false) return { value: text };
      const s = String(text).toLowerCase();
      if (["true", "1", "yes"].includes(s)) return { value: true };
      if (["false", "0", "no"].includes(s)) return { value: false };
      return { problem: "must be true or false" };
    }
    case "enum": {
      const s = String(text);
      if (!f.values.includes(s)) return { problem: `must be one of ${f.values.join(", ")}` };
      return { value: s };
    }
    case "duration": {
      const ms = typeof text === "number" ? text * 1000 : parseDuration(String(text));
      if (ms === null || !Number.isFinite(ms)) return { problem: `must be a duration like 500ms, 10s, 5m` };
      return { value: ms };
    }
  }
}

export interface LoadOptions {
  /** Parsed flags keyed like the spec (commander's `opts()`); undefined = not given. */
  flags?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** e.g. "L0_HUB_" -> L0_HUB_PORT for `port`. */
  envPrefix: string;
}

/**
 * Resolves every field from flag, then environment, then default, and validates it.
 * Throws an InvalidArgument L0Error listing every bad field at once.
 */
export function loadConfig<const S extends ConfigSpec>(spec: S, opts: LoadOptions): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  const problems: FieldViolation[] = [];
  const env = opts.env ?? process.env;
  for (const [key, f] of Object.entries(spec)) {
    const flag = flagName(key);
    const envKey = envName(opts.envPrefix, key);
    const fromFlag = opts.flags?.[key];
    const fromEnv = env[envKey];
    // commander fills defaults into flags; prefer an explicit environment value over a default.
    const flagIsDefault = fromFlag !== undefined && fromFlag === f.default;
    const raw =
      fromFlag !== undefined && !(flagIsDefault && fromEnv !== undefined) ? fromFlag : (fromEnv ?? f.default);
    if (raw === undefined) {
      if (f.required) problems.push({ field: `${flag} (${envKey})`, description: "is required" });
      continue;
    }
    const { value, problem } = parseValue(f, raw);
    if (problem) {
      const shown = f.secret ? "<redacted>" : JSON.stringify(raw);
      problems.push({ field: `${flag} (${envKey})`, description: `${problem}, got ${shown}` });
    } else out[key] = value;
  }
  if (problems.length > 0) throw invalidFields(problems);
  return out as ConfigOf<S>;
}

/** The config as safe to log: secrets redacted. */
export function redact<S extends ConfigSpec>(spec: S, config: ConfigOf<S>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [k, spec[k]?.secret && v !== undefined ? "<redacted>" : v]),
  );
}

/** The logging flags every program takes (`--log-level`, `--log-format`); spread into its spec. */
export const LOG_CONFIG = defineConfig({
  logLevel: { type: "enum", values: LOG_LEVELS, default: "info", description: "Log level" },
  logFormat: { type: "enum", values: ["auto", "json", "pretty"], default: "auto", description: "Log format" },
});

/** The run's TLS material for gRPC (lib/tls.ts); the operator sets it in every run pod. */
export const TLS_CONFIG = defineConfig({
  tlsDir: {
    type: "string",
    default: "",
    description:
      "Directory holding the run's ca.crt, tls.crt and tls.key (the mounted run Secret): mutual TLS on gRPC; " +
      "empty = plaintext (l0 local, on loopback)",
  },
});
