// The scheduler stand-in: one node with allocatable resources and labels. A pod binds when its
// nodeSelector matches and its requests fit beside the pods already bound; otherwise it stays
// Pending with PodScheduled=False, reason Unschedulable and the scheduler's message
// ("0/1 nodes are available: 1 Insufficient nvidia.com/gpu."). Affinity, taints, preemption and
// topology are not modelled. Pure.
import { parseQuantity } from "../../lib/quantity.js";
import { type Obj } from "./types.js";

export interface SimNode {
  name: string;
  labels: Record<string, string>;
  allocatable: Record<string, string>;
}

export const DEFAULT_ALLOCATABLE: Record<string, string> = {
  cpu: "32",
  memory: "256Gi",
  "ephemeral-storage": "1Ti",
  pods: "110",
  "nvidia.com/gpu": "8",
};

export function simNode(name: string, allocatable = DEFAULT_ALLOCATABLE): SimNode {
  return {
    name,
    labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" },
    allocatable,
  };
}

/** The pod's effective requests: the sum over containers, or the largest init container's if higher. */
export function podRequests(pod: Obj): Map<string, bigint> {
  const sum = new Map<string, bigint>();
  const req = (c: Obj): Record<string, string> => c.resources?.requests ?? c.resources?.limits ?? {};
  for (const c of (pod.spec?.containers ?? []) as Obj[])
    for (const [k, v] of Object.entries(req(c))) sum.set(k, (sum.get(k) ?? 0n) + parseQuantity(v).nanos);
  for (const c of (pod.spec?.initContainers ?? []) as Obj[])
    for (const [k, v] of Object.entries(req(c))) {
      const n = parseQuantity(v).nanos;
      if (n > (sum.get(k) ?? 0n)) sum.set(k, n);
    }
  for (const [k, v] of Object.entries((pod.spec?.overhead ?? {}) as Record<string, string>))
    sum.set(k, (sum.get(k) ?? 0n) + parseQuantity(v).nanos);
  sum.set("pods", 1_000_000_000n);
  return sum;
}

/** Why `pod` cannot be scheduled on `node` beside `bound` (non-terminal pods on it), if it cannot. */
export function unschedulable(pod: Obj, node: SimNode, bound: Obj[]): string | undefined {
  const selector = (pod.spec?.nodeSelector ?? {}) as Record<string, string>;
  if (Object.entries(selector).some(([k, v]) => node.labels[k] !== v))
    return "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.";
  const used = new Map<string, bigint>();
  for (const p of bound) for (const [k, v] of podRequests(p)) used.set(k, (used.get(k) ?? 0n) + v);
  const short: string[] = [];
  for (const [k, v] of podRequests(pod)) {
    if (v === 0n) continue;
    const free = parseQuantity(node.allocatable[k] ?? "0").nanos - (used.get(k) ?? 0n);
    if (v > free) short.push(k === "pods" ? "Too many pods" : `Insufficient ${k}`);
  }
  if (short.length === 0) return undefined;
  return `0/1 nodes are available: ${short
    .sort()
    .map((s) => `1 ${s}`)
    .join(", ")}.`;
}
