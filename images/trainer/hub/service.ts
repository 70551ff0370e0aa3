// The Rollout gRPC service: validates each request at the boundary (INVALID_ARGUMENT naming the
// field), checks the run token (lib/grpc.ts `unary`), and hands the work to the Hub. Lease long
// polls wait on the hub's in-memory wake-ups, never by polling.
import type * as grpc from "@grpc/grpc-js";
import { type Logger, silentLogger } from "../../../lib/log.js";
import { unary } from "../../../lib/grpc.js";
import { l0, RolloutService, type RolloutHandlers } from "../../../lib/proto.js";
import { type Hub } from "./hub.js";
import { validateHeartbeat, validateLease, validateRelease, validateSubmit } from "./validate.js";

export interface RolloutServiceOptions {
  token: string;
  logger?: Logger;
  /** What an empty Lease answer suggests as retry_after_ms. */
  retryAfterMs?: number;
}

export class RolloutServer {
  readonly #hub: Hub;
  readonly #opts: RolloutServiceOptions;

  constructor(hub: Hub, opts: RolloutServiceOptions) {
    this.#hub = hub;
    this.#opts = opts;
  }

  addToServer(server: grpc.Server): void {
    server.addService(RolloutService, this.handlers());
  }

  handlers(): RolloutHandlers {
    const ctx = { token: this.#opts.token, logger: this.#opts.logger ?? silentLogger() };
    const hub = this.#hub;
    const retryAfterMs = this.#opts.retryAfterMs ?? 250;
    return {
      lease: unary(
        ctx,
        "Lease",
        async (
          req: l0.v1.LeaseRequest,
          call: grpc.ServerUnaryCall<l0.v1.LeaseRequest, l0.v1.LeaseResponse>,
        ) => {
          validateLease(req);
          let tasks = hub.lease(req.workerId, req.maxTasks);
          if (tasks.length === 0 && req.waitMs > 0) {
            const deadline = Date.now() + req.waitMs;
            const ac = new AbortController();
            const cancel = (): void => ac.abort();
            call.once("cancelled", cancel);
            try {
              for (let left = req.waitMs; tasks.length === 0 && left > 0 && !ac.signal.aborted;) {
                await hub.waitForWork(left, ac.signal);
                if (!ac.signal.aborted) tasks = hub.lease(req.workerId, req.maxTasks);
                left = deadline - Date.now();
              }
            } finally {
              call.removeListener("cancelled", cancel);
            }
          }
          return l0.v1.LeaseResponse.create({ tasks, retryAfterMs: tasks.length === 0 ? retryAfterMs : 0 });
        },
      ),
      heartbeat: unary(ctx, "Heartbeat", (req: l0.v1.HeartbeatRequest) => {
        validateHeartbeat(req);
        return { leases: hub.heartbeat(req.workerId, req.leases) };
      }),
      release: unary(ctx, "Release", (req: l0.v1.ReleaseRequest) => {
        validateRelease(req);
        return { released: hub.release(req.workerId, req.leaseIds, req.reason) };
      }),
      submit: unary(ctx, "Submit", (req: l0.v1.SubmitRequest) => {
        validateSubmit(req);
        return hub.submit(req.trajectory);
      }),
      stats: unary(ctx, "Stats", () => hub.stats()),
    };
  }
}
