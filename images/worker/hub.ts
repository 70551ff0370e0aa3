// The worker's client of the Rollout service (proto/l0/v1/rollout.proto): every call carries
// the run token and a deadline; errors come back as domain errors (lib/grpc.ts).
import { call, channelOptions } from "../../lib/grpc.js";
import { clientCredentials, type RunTls } from "../../lib/tls.js";
import { l0, RolloutClient } from "../../lib/proto.js";

export interface HubApi {
  lease(workerId: string, maxTasks: number, waitMs: number): Promise<l0.v1.LeaseResponse>;
  heartbeat(workerId: string, leases: l0.v1.ILeaseProgress[]): Promise<l0.v1.HeartbeatResponse>;
  release(workerId: string, leaseIds: string[], reason: string): Promise<l0.v1.ReleaseResponse>;
  submit(trajectory: l0.v1.ITrajectory): Promise<l0.v1.SubmitResponse>;
  close(): void;
}

export class HubClient implements HubApi {
  readonly #client: RolloutClient;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(opts: {
    address: string;
    token: string;
    timeoutMs: number;
    maxMessageBytes?: number;
    tls?: RunTls;
  }) {
    const { credentials, options } = clientCredentials(opts.tls);
    this.#client = new RolloutClient(opts.address, credentials, {
      ...channelOptions(opts.maxMessageBytes),
      ...options,
    });
    this.#token = opts.token;
    this.#timeoutMs = opts.timeoutMs;
  }

  lease(workerId: string, maxTasks: number, waitMs: number): Promise<l0.v1.LeaseResponse> {
    return call(this.#client.lease, this.#client, l0.v1.LeaseRequest.create({ workerId, maxTasks, waitMs }), {
      token: this.#token,
      timeoutMs: waitMs + this.#timeoutMs,
    });
  }

  heartbeat(workerId: string, leases: l0.v1.ILeaseProgress[]): Promise<l0.v1.HeartbeatResponse> {
    return call(
      this.#client.heartbeat,
      this.#client,
      l0.v1.HeartbeatRequest.create({ workerId, leases }),
      this.#opts(),
    );
  }

  release(workerId: string, leaseIds: string[], reason: string): Promise<l0.v1.ReleaseResponse> {
    return call(
      this.#client.release,
      this.#client,
      l0.v1.ReleaseRequest.create({ workerId, leaseIds, reason }),
      this.#opts(),
    );
  }

  submit(trajectory: l0.v1.ITrajectory): Promise<l0.v1.SubmitResponse> {
    return call(this.#client.submit, this.#client, l0.v1.SubmitRequest.create({ trajectory }), this.#opts());
  }

  close(): void {
    this.#client.close();
  }

  #opts(): { token: string; timeoutMs: number } {
    return { token: this.#token, timeoutMs: this.#timeoutMs };
  }
}
