// Reads each worker pod's active episodes from its `/episodes` endpoint (images/worker/main.ts:
// `{"active": n, "capacity": k, "draining": bool}`), for the pod-deletion-cost annotations. Thin
// I/O with a deadline per pod; a pod that does not answer is left out (deletionCostPatches then
// leaves its annotation alone), never guessed idle.

export interface WorkerPodAddress {
  name: string;
  /** Pod IP; pods without one (not scheduled yet) are skipped. */
  ip?: string;
}

export interface ActiveEpisodesOptions {
  /** The worker's metrics port (serves /episodes). */
  port: number;
  timeoutMs?: number;
}

/** Active episodes per pod name, for the pods that answered in time with a valid body. */
export async function readActiveEpisodes(
  pods: WorkerPodAddress[],
  opts: ActiveEpisodesOptions,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  await Promise.all(
    pods
      .filter((p) => p.ip)
      .map(async (p) => {
        try {
          const host = p.ip!.includes(":") ? `[${p.ip}]` : p.ip;
          const res = await fetch(`http://${host}:${opts.port}/episodes`, {
            signal: AbortSignal.timeout(opts.timeoutMs ?? 1000),
          });
          if (!res.ok) return;
          const body = (await res.json()) as { active?: unknown };
          if (typeof body.active === "number" && Number.isFinite(body.active) && body.active >= 0)
            out.set(p.name, body.active);
        } catch {
          // Unreachable, slow or malformed: no report for this pod.
        }
      }),
  );
  return out;
}
