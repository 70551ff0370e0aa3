// Graceful shutdown on SIGTERM/SIGINT: run the registered hooks in reverse order of
// registration, each bounded by the overall grace period, then exit. A second signal exits at once.
import { type Logger, errorFields } from "./log.js";

export type ShutdownHook = (signal: string) => Promise<void> | void;

export interface Shutdown {
  /** Registers a hook; hooks run last-registered first (servers stop before their dependencies). */
  add(name: string, hook: ShutdownHook): void;
  /** Runs the hooks now (as on a signal); resolves with the exit code it would use. */
  run(signal: string): Promise<number>;
  /** A signal that resolves once shutdown has begun, for loops that should stop. */
  readonly signal: AbortSignal;
}

export interface ShutdownOptions {
  logger: Logger;
  graceMs?: number;
  /** Install SIGTERM/SIGINT handlers and call process.exit at the end. Default true. */
  installSignals?: boolean;
  exit?: (code: number) => void;
}

export function createShutdown(opts: ShutdownOptions): Shutdown {
  const hooks: { name: string; hook: ShutdownHook }[] = [];
  const controller = new AbortController();
  const graceMs = opts.graceMs ?? 30_000;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let running: Promise<number> | null = null;

  const run = (signal: string): Promise<number> => {
    if (running) return running;
    controller.abort(signal);
    opts.logger.info("shutting down", { signal, hooks: hooks.length, graceMs });
    running = (async () => {
      const deadline = Date.now() + graceMs;
      let code = 0;
      for (const { name, hook } of [...hooks].reverse()) {
        const left = Math.max(0, deadline - Date.now());
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            Promise.resolve(hook(signal)),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`timed out after ${left} ms`)), left);
            }),
          ]);
        } catch (err) {
          code = 1;
          opts.logger.error("shutdown hook failed", { hook: name, ...errorFields(err) });
        } finally {
          clearTimeout(timer);
        }
      }
      opts.logger.info("shutdown complete", { code });
      return code;
    })();
    return running;
  };

  if (opts.installSignals ?? true) {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      process.on(sig, () => {
        if (running) {
          opts.logger.warn("second signal, exiting now", { signal: sig });
          exit(130);
          return;
        }
        void run(sig).then(exit);
      });
    }
  }

  return { add: (name, hook) => hooks.push({ name, hook }), run, signal: controller.signal };
}
