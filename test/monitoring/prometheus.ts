// Test helpers: child programs that print their metrics port, and a real Prometheus server
// (Debian's) on 127.0.0.1 with a temporary data dir, queried over its HTTP API and stopped by PID.
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { stringify } from "yaml";

export interface Child {
  proc: ChildProcess;
  /** Everything it wrote, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** Spawns a program, keeping its output; stop() sends SIGTERM to its PID, then SIGKILL after 5 s. */
export function spawnChild(cmd: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): Child {
  const proc = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  proc.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  return {
    proc,
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        const kill = setTimeout(() => proc.kill("SIGKILL"), 5000);
        proc.once("exit", () => {
          clearTimeout(kill);
          resolve();
        });
        proc.kill("SIGTERM");
      }),
  };
}

/** Spawns a program and resolves once `pick` finds what it needs in a line of its output. */
export function spawnUntil<T>(
  cmd: string,
  args: string[],
  pick: (line: string) => T | undefined,
  opts: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<{ child: Child; value: T }> {
  const child = spawnChild(cmd, args, opts.cwd, opts.env);
  const proc = child.proc;
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void child.stop();
      reject(
        new Error(
          `${cmd} ${args.join(" ")}: not ready in ${opts.timeoutMs} ms; output:\n${out.slice(-2000)}`,
        ),
      );
    }, opts.timeoutMs);
    let done = false;
    const onData = (buf: Buffer): void => {
      out += buf.toString();
      if (done) return;
      for (const line of out.split("\n")) {
        const value = pick(line);
        if (value !== undefined) {
          done = true;
          clearTimeout(timer);
          resolve({ child, value });
          return;
        }
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.once("exit", (code) => {
      if (done) return;
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code} before it was ready; output:\n${out.slice(-2000)}`));
    });
  });
}

/** A free loopback port (for programs that cannot report the one they bound). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface ScrapeJob {
  job: string;
  /** One target per port on 127.0.0.1 (a pod with several programs has several). */
  ports: number[];
  labels: Record<string, string>;
  honorLabels?: boolean;
}

export interface Prometheus {
  url: string;
  child: Child;
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  get<T>(path: string): Promise<T>;
}

/** Starts Prometheus scraping `jobs` every second and evaluating `ruleFiles` every second. */
export async function startPrometheus(
  dir: string,
  jobs: ScrapeJob[],
  ruleFiles: string[],
): Promise<Prometheus> {
  const config = {
    global: { scrape_interval: "1s", scrape_timeout: "900ms", evaluation_interval: "1s" },
    rule_files: ruleFiles,
    scrape_configs: jobs.map((j) => ({
      job_name: j.job,
      honor_labels: j.honorLabels ?? false,
      static_configs: [{ targets: j.ports.map((p) => `127.0.0.1:${p}`), labels: j.labels }],
    })),
  };
  const file = join(dir, "prometheus.yml");
  writeFileSync(file, stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawnChild(
    "prometheus",
    [
      `--config.file=${file}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    dir,
  );
  const prom = { url, child, ...api(url) };
  await eventually(
    async () => {
      if (child.proc.exitCode !== null) throw new Error(`prometheus exited: ${child.output().slice(-2000)}`);
      const res = await fetch(url + "/-/ready", { signal: AbortSignal.timeout(1000) });
      if (!res.ok) throw new Error(`prometheus not ready: ${res.status}`);
    },
    15_000,
    100,
  );
  return prom;
}

function api(url: string): Pick<Prometheus, "query" | "get"> {
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(url + path, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    get,
    query: async (expr) =>
      (
        await get<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
          `/api/v1/query?query=${encodeURIComponent(expr)}`,
        )
      ).result,
  };
}

/** Retries `check` until it returns without throwing, or rethrows its last error at the deadline. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs: number, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}
