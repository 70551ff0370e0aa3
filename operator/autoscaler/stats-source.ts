// The autoscaler's view of a hub: its Stats (through the operator's shared client,
// operator/hub-stats.ts) as a plain StatsSample. A failed read is one failed observation.
import { l0 } from "../../lib/proto.js";
import { HubStats, type HubTarget } from "../hub-stats.js";
import { type HubPhase, type StatsSample } from "./types.js";

export { type HubTarget } from "../hub-stats.js";

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

/** StatsSource over the operator's shared hub client. */
export class GrpcStatsSource implements StatsSource {
  constructor(readonly client: HubStats = new HubStats()) {}

  async read(target: HubTarget, now: number): Promise<StatsSample> {
    return toSample(await this.client.read(target), now);
  }

  close(): void {
    this.client.close();
  }
}
