// Both kinds as read from the API, resolved through the one resolver (lib/run-config.ts: the
// CRD's schema, defaults and CEL rules, the same checks the API server makes; an object stored
// before a CRD upgrade can still fail them). Either the resolved object, or a Verdict naming
// every bad field, which the reconcilers turn into an InvalidSpec condition. Pure.
import {
  type AgentWorkerPool,
  type ResolvedAgentWorkerPool,
  type ResolvedTrainingRun,
  type TrainingRun,
} from "../gen/crds/index.js";
import { isL0Error } from "../lib/errors.js";
import { parseTrainingRun, parseWorkerPool } from "../lib/run-config.js";

/** A decision with its reason (CamelCase, the condition's reason) and a message for humans. */
export interface Verdict {
  reason: string;
  message: string;
}

const invalidSpec = (err: unknown): { invalid: Verdict } => ({
  invalid: { reason: "InvalidSpec", message: isL0Error(err) ? err.message : String(err) },
});

/** The run resolved, with its stored metadata and status; status is the operator's, not checked. */
export function validateRun(obj: TrainingRun): { run: ResolvedTrainingRun } | { invalid: Verdict } {
  try {
    const run = parseTrainingRun({ apiVersion: obj.apiVersion, metadata: obj.metadata, spec: obj.spec }, "");
    return { run: { ...run, metadata: obj.metadata, status: obj.status } };
  } catch (err) {
    return invalidSpec(err);
  }
}

/** The pool resolved, with its stored metadata and status. */
export function validatePool(obj: AgentWorkerPool): { pool: ResolvedAgentWorkerPool } | { invalid: Verdict } {
  try {
    const pool = parseWorkerPool({ apiVersion: obj.apiVersion, metadata: obj.metadata, spec: obj.spec }, "");
    return { pool: { ...pool, metadata: obj.metadata, status: obj.status } };
  } catch (err) {
    return invalidSpec(err);
  }
}
