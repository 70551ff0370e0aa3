// The hub's side of the learner: launches the Python service (`/usr/bin/python3 -m learner`),
// waits for its `learner ready` log line, and wraps the Learner gRPC service in typed calls that
// carry the run token and a deadline. The Python program owns its flags; this file only builds them.
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { L0Error } from "../../../lib/errors.js";
import { EXIT } from "../../../lib/run-main.js";
import { call, channelOptions } from "../../../lib/grpc.js";
import { type Logger } from "../../../lib/log.js";
import { LearnerClient as GrpcLearnerClient, type l0 } from "../../../lib/proto.js";

/** Debian's interpreter, which has torch and grpcio (the first `python3` on PATH may not). */
export const DEFAULT_PYTHON = "/usr/bin/python3";

export interface LearnerPaths {
  /** Directory holding the `learner` package (images/trainer in a checkout). */
  packageParent: string;
  /** Generated Python stubs (gen/python). */
  genPython: string;
}

/** Where the Python sources are: beside this file in a checkout, overridable for images. */
export function learnerPaths(env: NodeJS.ProcessEnv = process.env): LearnerPaths {
  const here = dirname(fileURLToPath(import.meta.url));
  // images/trainer/learner in a checkout; dist/images/trainer/learner when compiled (the Python
  // files are not copied by tsc, so fall back to the package root's sources).
  const root = here.includes(join("dist", "images"))
    ? join(here, "..", "..", "..", "..")
    : join(here, "..", "..", "..");
  return {
    packageParent: env.L0_LEARNER_PYTHONPATH ?? join(root, "images", "trainer"),
    genPython: env.L0_GEN_PYTHON ?? join(root, "gen", "python"),
  };
}

/** Flag values for the Python service; keys are its flags without dashes (snake or camel case). */
export type LearnerFlags = Record<string, string | number | boolean | undefined>;

/** Pure: `{tokenFile: "/t", nLayer: 2}` -> ["--token-file", "/t", "--n-layer", "2"]. */
export function learnerArgs(flags: LearnerFlags): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const flag = "--" + key.replace(/_/g, "-").replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
    out.push(flag, String(value));
  }
  return out;
}

/** Pure: the child's environment: import paths and one BLAS thread (7x faster on these CPUs). */
export function learnerEnv(paths: LearnerPaths, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const pythonPath = [paths.packageParent, base.PYTHONPATH].filter(Boolean).join(":");
  return {
    ...base,
    PYTHONPATH: pythonPath,
    L0_GEN_PYTHON: paths.genPython,
    OPENBLAS_NUM_THREADS: base.OPENBLAS_NUM_THREADS ?? "1",
    PYTHONUNBUFFERED: "1",
  };
}

export interface LaunchOptions {
  flags: LearnerFlags;
  python?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * How long the starting learner may go without writing a line before it counts as hung (model
   * build, each warm-start progress line, `learner ready`). Default 120 s.
   */
  readyTimeoutMs?: number;
  /** Receives the learner's JSON log lines (parsed) and any other stderr lines (as text). */
  onLog?: (line: Record<string, unknown> | string) => void;
}

export interface LaunchedLearner {
  process: ChildProcess;
  /** host:port of the gRPC Learner service. */
  address: string;
  /** OpenAI-compatible base URL (ends in /v1) on the CPU path; "" when no engine runs. */
  engineUrl: string;
  /** Base URL of /metrics, /healthz, /readyz; "" unless started with a metricsPort. */
  metricsUrl: string;
  /** SIGTERM, then SIGKILL after graceMs; resolves with the exit code (null if killed). */
  stop(graceMs?: number): Promise<number | null>;
}

/** Starts the learner and resolves once it reports its ports; rejects with its last stderr lines. */
export function launchLearner(opts: LaunchOptions): Promise<LaunchedLearner> {
  const paths = learnerPaths(opts.env);
  const child = spawn(opts.python ?? DEFAULT_PYTHON, ["-m", "learner", ...learnerArgs(opts.flags)], {
    env: learnerEnv(paths, opts.env ?? process.env),
    stdio: ["ignore", "inherit", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = async (graceMs = 10_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return new Promise((resolve, reject) => {
    const tail: string[] = [];
    let ready = false;
    const fail = (why: string, code?: number | null) => {
      if (ready) return;
      ready = true;
      clearTimeout(timer);
      void stop(1000);
      // Exit 2: its configuration or input (EXIT.config); the trainer exits 2 too, with the
      // learner's one-line reason, and nobody restarts it to fail the same way.
      const reason = [...tail].reverse().find((l) => l.startsWith("learner: "));
      if (code === EXIT.config && reason)
        reject(new L0Error("InvalidArgument", reason.trim(), { reason: "LearnerConfig" }));
      else reject(new L0Error("Unavailable", `learner did not start: ${why}\n${tail.join("\n")}`));
    };
    // A silence deadline, not a start deadline: every line the starting learner writes (the warm
    // start logs its progress every few steps) re-arms it, so a warm start of hours is fine and a
    // learner stuck without a word is not.
    const silenceMs = opts.readyTimeoutMs ?? 120_000;
    const arm = () =>
      setTimeout(() => fail(`no "learner ready" and no log line for ${silenceMs} ms`), silenceMs);
    let timer = arm();
    child.once("error", (err) => fail(err.message));
    // "close", not "exit": by then its last stderr lines (the reason) have been read.
    child.once("close", (code) => fail(`exited with code ${code}`, code));
    createInterface({ input: child.stderr! }).on("line", (text) => {
      let rec: Record<string, unknown> | null = null;
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed && typeof parsed === "object") rec = parsed as Record<string, unknown>;
      } catch {
        // not a log record: keep as text
      }
      opts.onLog?.(rec ?? text);
      if (!ready) {
        clearTimeout(timer);
        timer = arm();
        tail.push(text);
        if (tail.length > 20) tail.shift();
      }
      if (!ready && rec?.message === "learner ready") {
        ready = true;
        clearTimeout(timer);
        resolve({
          process: child,
          address: `127.0.0.1:${Number(rec.grpc_port)}`,
          engineUrl: typeof rec.engine_url === "string" ? rec.engine_url : "",
          metricsUrl: Number(rec.metrics_port) > 0 ? `http://127.0.0.1:${Number(rec.metrics_port)}` : "",
          stop,
        });
      }
    });
  });
}

/** Forwards the learner's log records to a winston logger, keeping their fields. */
export function logTo(logger: Logger): (line: Record<string, unknown> | string) => void {
  return (line) => {
    if (typeof line === "string") {
      logger.warn("learner stderr", { line });
      return;
    }
    const { level, message, timestamp: _t, component: _c, ...fields } = line;
    const lvl = level === "error" || level === "warn" || level === "debug" ? level : "info";
    logger.log(lvl, String(message ?? "learner log"), fields);
  };
}

export interface ClientOptions {
  token: string;
  /** Deadline of Info/Save/Load/Export calls. Default 60 s. */
  timeoutMs?: number;
  /** Deadline of Train/Sft calls, which scale with the batch. Default 10 min. */
  trainTimeoutMs?: number;
}

/** Typed Learner calls with the run token and a deadline; errors arrive as L0Error. */
export class LearnerClient {
  readonly #client: GrpcLearnerClient;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #trainTimeoutMs: number;

  constructor(address: string, opts: ClientOptions) {
    this.#client = new GrpcLearnerClient(address, grpc.credentials.createInsecure(), channelOptions());
    this.#token = opts.token;
    this.#timeoutMs = opts.timeoutMs ?? 60_000;
    this.#trainTimeoutMs = opts.trainTimeoutMs ?? 600_000;
  }

  #opts(long = false) {
    return { token: this.#token, timeoutMs: long ? this.#trainTimeoutMs : this.#timeoutMs };
  }

  train(req: l0.v1.ITrainRequest): Promise<l0.v1.TrainResponse> {
    return call(this.#client.train, this.#client, req, this.#opts(true));
  }

  sft(req: l0.v1.ISftRequest): Promise<l0.v1.SftResponse> {
    return call(this.#client.sft, this.#client, req, this.#opts(true));
  }

  save(dir: string): Promise<l0.v1.SaveResponse> {
    return call(this.#client.save, this.#client, { dir }, this.#opts());
  }

  load(dir: string): Promise<l0.v1.LoadResponse> {
    return call(this.#client.load, this.#client, { dir }, this.#opts());
  }

  exportWeights(dir = "", shardBytes = 0): Promise<l0.v1.ExportWeightsResponse> {
    return call(this.#client.exportWeights, this.#client, { dir, shardBytes }, this.#opts());
  }

  info(): Promise<l0.v1.InfoResponse> {
    return call(this.#client.info, this.#client, {}, this.#opts());
  }

  /** Polls Info until the service answers or timeoutMs passes. */
  async waitReady(timeoutMs = 30_000): Promise<l0.v1.InfoResponse> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await this.info();
      } catch (err) {
        if (Date.now() > end || (err instanceof L0Error && err.kind === "Unauthenticated")) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  close(): void {
    this.#client.close();
  }
}
