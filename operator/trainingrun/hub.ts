// The run's hub as the TrainingRun reconciler sees it: its Stats as a HubView, behind a
// one-method interface so reconciler tests run without a hub. The gRPC client is the
// operator's shared one (operator/hub-stats.ts).
import { type l0 } from "../../lib/proto.js";
import { type HubStats, type HubTarget } from "../hub-stats.js";
import { type HubView } from "./status.js";

export interface HubStatsSource {
  /** Reads the hub's Stats; rejects (L0Error) when it cannot be reached in time. */
  stats(target: HubTarget): Promise<HubView>;
}

export function toHubView(s: l0.v1.IStatsResponse): HubView {
  return {
    step: Number(s.step ?? 0),
    maxSteps: Number(s.maxSteps ?? 0),
    policyVersion: Number(s.policyVersion ?? 0),
    rewardMean: Number(s.rewardMean ?? 0),
    backlog: Number(s.backlog ?? 0),
    emptySteps: Number(s.emptySteps ?? 0),
    ...(s.lastEval ? { evaluation: toEvaluation(s.lastEval) } : {}),
  };
}

/** The hub's last evaluation as the run's status.evaluation; no judge figures without a judge. */
function toEvaluation(e: l0.v1.IEvalStats): NonNullable<HubView["evaluation"]> {
  const j = e.judge;
  return {
    step: Number(e.step ?? 0),
    accuracy: e.accuracy ?? 0,
    ...(j
      ? {
          judge: {
            accuracy: j.accuracy ?? 0,
            accuracyGivenAttempted: j.accuracyGivenAttempted ?? 0,
            fScore: j.fScore ?? 0,
          },
        }
      : {}),
  };
}

export function grpcHubStats(client: HubStats): HubStatsSource {
  return { stats: async (target) => toHubView(await client.read(target)) };
}

/** For runs outside a cluster network (tests, the bench): the hub is never reachable. */
export const noHub: HubStatsSource = {
  stats: () => Promise.reject(new Error("hub stats disabled")),
};
