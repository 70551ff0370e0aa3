// The run's hub as the operator sees it: one Stats call with the run token and a deadline, behind
// a one-method interface so reconciler tests run without a hub. Clients are cached per address.
import * as grpc from "@grpc/grpc-js";
import { call, channelOptions } from "../../lib/grpc.js";
import { RolloutClient, type l0 } from "../../lib/proto.js";
import { type HubView } from "./status.js";

export interface HubStatsSource {
  /** Reads the hub's Stats; rejects (L0Error) when it cannot be reached in time. */
  stats(address: string, token: string): Promise<HubView>;
  close(): void;
}

export function toHubView(s: l0.v1.IStatsResponse): HubView {
  return {
    step: Number(s.step ?? 0),
    maxSteps: Number(s.maxSteps ?? 0),
    policyVersion: Number(s.policyVersion ?? 0),
    rewardMean: Number(s.rewardMean ?? 0),
    backlog: Number(s.backlog ?? 0),
  };
}

export function grpcHubStats(opts: { timeoutMs?: number } = {}): HubStatsSource {
  const clients = new Map<string, RolloutClient>();
  const client = (address: string) => {
    let c = clients.get(address);
    if (!c) {
      c = new RolloutClient(address, grpc.credentials.createInsecure(), channelOptions(4 * 1024 * 1024));
      clients.set(address, c);
    }
    return c;
  };
  return {
    async stats(address, token) {
      const c = client(address);
      const res = await call(c.stats, c, {}, { token, timeoutMs: opts.timeoutMs ?? 2000 });
      return toHubView(res);
    },
    close() {
      for (const c of clients.values()) c.close();
      clients.clear();
    },
  };
}

/** For runs outside a cluster network (tests, the bench): the hub is never reachable. */
export const noHub: HubStatsSource = {
  stats: () => Promise.reject(new Error("hub stats disabled")),
  close: () => undefined,
};
