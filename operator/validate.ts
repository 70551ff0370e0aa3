// Both kinds as read from the API, resolved through the one resolver (lib/run-config.ts: the
// CRD's schema, defaults and CEL rules, the same checks the API server makes; an object stored
// before a CRD upgrade can still fail them), then checked for what the API would refuse in
// their children or what could never train (the preflights). Either the resolved object, or a
// Verdict naming the bad field(s), which the reconcilers turn into a condition. Pure.
import {
  type AgentWorkerPool,
  type ResolvedAgentWorkerPool,
  type ResolvedTrainingRun,
  type TrainingRun,
} from "../gen/crds/index.js";
import { isL0Error } from "../lib/errors.js";
import { parseTrainingRun, parseWorkerPool } from "../lib/run-config.js";
import { preflight } from "./trainingrun/preflight.js";
import { type Verdict } from "./verdict.js";
import { poolPreflight } from "./workerpool/preflight.js";

export { type Verdict } from "./verdict.js";

const invalidSpec = (err: unknown): { invalid: Verdict } => ({
  invalid: { reason: "InvalidSpec", message: isL0Error(err) ? err.message : String(err) },
});

/** The run resolved, with its stored metadata and status; status is the operator's, not checked. */
export function validateRun(obj: TrainingRun): { run: ResolvedTrainingRun } | { invalid: Verdict } {
  try {
    const parsed = parseTrainingRun(
      { apiVersion: obj.apiVersion, metadata: obj.metadata, spec: obj.spec },
      "",
    );
    const run = { ...parsed, metadata: obj.metadata, status: obj.status };
    const problem = preflight(run);
    return problem ? { invalid: problem } : { run };
  } catch (err) {
    return invalidSpec(err);
  }
}

/** The pool resolved, with its stored metadata and status. */
export function validatePool(obj: AgentWorkerPool): { pool: ResolvedAgentWorkerPool } | { invalid: Verdict } {
  try {
    const parsed = parseWorkerPool(
      { apiVersion: obj.apiVersion, metadata: obj.metadata, spec: obj.spec },
      "",
    );
    const pool = { ...parsed, metadata: obj.metadata, status: obj.status };
    const problem = poolPreflight(pool);
    return problem ? { invalid: problem } : { pool };
  } catch (err) {
    return invalidSpec(err);
  }
}
