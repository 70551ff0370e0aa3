// The fan-out tree: pure bookkeeping of who pulls a version from whom. Sidecars join a
// version's tree in order of arrival; the first pulls from the weight service, each later one
// from a peer that joined before it, so every node feeds at most `fanout` children and the
// trainer's link carries each byte once, however many replicas pull (peers relay each chunk as
// soon as it is verified, so a deeper tree costs little time).

export interface PlanEntry {
  engineId: string;
  peerAddress: string;
  /** The peer's bulk port on peerAddress's host; 0 = none. */
  peerBulkPort: number;
}

export interface Assignment {
  /** Empty: pull from the weight service. */
  sourceAddress: string;
  sourceEngineId: string;
  /** The source peer's bulk port (0 = none, or the source is the service). */
  sourceBulkPort: number;
}

/** Index of the node that feeds node `index`, or -1 for the service (which feeds node 0 only). */
export function parentIndex(index: number, fanout: number): number {
  const k = Math.max(1, Math.floor(fanout));
  return index <= 0 ? -1 : Math.floor((index - 1) / k);
}

/**
 * Where member `engineId` pulls from. A parent that serves no peers (no address) or is no
 * longer alive (stopped reporting) is skipped upward, ending at the service.
 */
export function assign(
  members: readonly PlanEntry[],
  engineId: string,
  fanout: number,
  isLive: (engineId: string) => boolean = () => true,
): Assignment {
  const index = members.findIndex((m) => m.engineId === engineId);
  let p = index < 0 ? -1 : parentIndex(index, fanout);
  const usable = (m: PlanEntry) => m.peerAddress !== "" && isLive(m.engineId);
  while (p >= 0 && !usable(members[p]!)) p = parentIndex(p, fanout);
  if (p < 0) return { sourceAddress: "", sourceEngineId: "", sourceBulkPort: 0 };
  const m = members[p]!;
  return { sourceAddress: m.peerAddress, sourceEngineId: m.engineId, sourceBulkPort: m.peerBulkPort };
}

/** Per-version trees. Plans are idempotent: asking again gives the same answer. */
export class FanoutPlanner {
  readonly #fanout: number;
  readonly #trees = new Map<number, PlanEntry[]>();

  constructor(fanout: number) {
    this.#fanout = fanout;
  }

  plan(
    version: number,
    engineId: string,
    peerAddress: string,
    isLive?: (engineId: string) => boolean,
    peerBulkPort = 0,
  ): Assignment {
    let members = this.#trees.get(version);
    if (!members) this.#trees.set(version, (members = []));
    if (!members.some((m) => m.engineId === engineId)) members.push({ engineId, peerAddress, peerBulkPort });
    return assign(members, engineId, this.#fanout, isLive);
  }

  /** Forgets the trees of versions older than `version` (they are no longer pulled). */
  forgetBefore(version: number): void {
    for (const v of this.#trees.keys()) if (v < version) this.#trees.delete(v);
  }
}
