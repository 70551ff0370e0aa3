// kstatus conditions with apimachinery's meta.SetStatusCondition semantics: keyed by type,
// lastTransitionTime moves only when status flips, observedGeneration on every condition. Pure.

export type ConditionStatus = "True" | "False" | "Unknown";
export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}
export type ConditionInput = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

/** Returns new conditions with `c` set; the input array is not changed. */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  c: ConditionInput,
  now: Date,
  generation?: number,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((x) => x.type === c.type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
    lastTransitionTime:
      prev && prev.status === c.status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, "Z"),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

/** Sets every condition in order. */
export function setConditions(
  conditions: readonly Condition[] | undefined,
  inputs: readonly ConditionInput[],
  now: Date,
  generation?: number,
): Condition[] {
  return inputs.reduce<Condition[]>(
    (acc, c) => setCondition(acc, c, now, generation),
    [...(conditions ?? [])],
  );
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export const isTrue = (conditions: readonly Condition[] | undefined, type: string): boolean =>
  findCondition(conditions, type)?.status === "True";

/** True when condition `type` would read differently with this status, reason and message. */
export function conditionDiffers(
  conditions: readonly Condition[] | undefined,
  type: string,
  c: { status?: ConditionStatus; reason: string; message: string },
): boolean {
  const cur = findCondition(conditions, type);
  return !cur || cur.status !== (c.status ?? "True") || cur.reason !== c.reason || cur.message !== c.message;
}
