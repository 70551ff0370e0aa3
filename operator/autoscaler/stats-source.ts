// The one piece of autoscaler I/O toward the data plane: read a hub's Stats over gRPC with the
// run token and a deadline, and turn the answer into a plain StatsSample. No retries here: a
// failed read is one failed observation, and the next reconcile tries again.
import * as grpc from "@grpc/grpc-js";
import { call, channelOptions } from "../../lib/grpc.js";
import { l0, RolloutClient } from "../../lib/proto.js";
import { type HubPhase, type StatsSample } from "./types.js";

/** Where a pool's hub is and the token to call it with; the operator resolves both (Service, Secret). */
export interface HubTarget {
  address: string;
  token: string;
}

/** Reads one Stats sample; rejects (with the reason) when the hub cannot be read. */
export interface StatsSource {
  read(target: HubTarget, now: number): Promise<StatsSample>;
  close(): void;
}

const PHASES: Record<number, HubPhase> = {
  [l0.v1.HubPhase.HUB_PHASE_WAITING]: "Waiting",
  [l0.v1.HubPhase.HUB_PHASE_ROLLOUT]: "Rollout",
  [l0.v1.HubPhase.HUB_PHASE_TRAINING]: "Training",
  [l0.v1.HubPhase.HUB_PHASE_DONE]: "Done",
};

/** StatsResponse -> StatsSample; pure. `backlog` is the hub's queued + leased (rollout.proto). */
export function toSample(res: l0.v1.IStatsResponse, at: number): StatsSample {
  const n = (v: number | null | undefined): number => Number(v ?? 0);
  return {
    at,
    backlog: n(res.backlog),
    phase: PHASES[res.phase ?? 0] ?? "Unknown",
    step: n(res.step),
    episodesPerSecond: res.episodesPerSecond ?? 0,
    activeWorkers: res.activeWorkers ?? 0,
    llmSecondsPerTurn: res.llmSecondsPerTurn ?? 0,
  };
}

/** gRPC StatsSource: one cached client per hub address; every call has a deadline. */
export class GrpcStatsSource implements StatsSource {
  readonly #clients = new Map<string, InstanceType<typeof RolloutClient>>();
  readonly #timeoutMs: number;

  constructor(opts: { timeoutMs?: number } = {}) {
    this.#timeoutMs = opts.timeoutMs ?? 2000;
  }

  async read(target: HubTarget, now: number): Promise<StatsSample> {
    let client = this.#clients.get(target.address);
    if (!client) {
      client = new RolloutClient(
        target.address,
        grpc.credentials.createInsecure(),
        channelOptions(1024 * 1024),
      );
      this.#clients.set(target.address, client);
    }
    const res = await call(client.stats, client, {}, { token: target.token, timeoutMs: this.#timeoutMs });
    return toSample(res, now);
  }

  /** Drops the client of one hub (its pool was deleted). */
  drop(address: string): void {
    this.#clients.get(address)?.close();
    this.#clients.delete(address);
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}
