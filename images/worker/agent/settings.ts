// The agent settings a task carries, checked at the worker's boundary. The hub sends them
// complete (resolved from the TrainingRun with the CRD's defaults); proto3 cannot tell an
// unset number from 0, so a zero where the CRD requires a positive value is a bug upstream,
// reported naming the field rather than papered over with a default of our own.
import { type FieldViolation, invalidFields } from "../../../lib/errors.js";
import { type l0 } from "../../../lib/proto.js";

export interface AgentLimits {
  tools: string[];
  maxTurns: number;
  maxTokensPerTurn: number;
  contextBudget: number;
  cellTimeoutMs: number;
  episodeTimeoutMs: number;
  model: string;
  temperature: number;
  topP: number;
}

const POSITIVE = [
  "maxTurns",
  "maxTokensPerTurn",
  "contextBudget",
  "cellTimeoutSeconds",
  "episodeTimeoutSeconds",
  "topP",
] as const;

/** The task's agent settings, complete, or an InvalidArgument error naming each bad field. */
export function agentLimits(agent: l0.v1.IAgentSettings | null | undefined): AgentLimits {
  const a = agent ?? {};
  const problems: FieldViolation[] = [];
  for (const k of POSITIVE) {
    const v = a[k];
    if (typeof v !== "number" || !(v > 0))
      problems.push({ field: `task.agent.${k}`, description: `must be > 0, got ${String(v ?? "nothing")}` });
  }
  if (!a.model) problems.push({ field: "task.agent.model", description: "is required" });
  const t = a.temperature ?? 0;
  if (!(t >= 0)) problems.push({ field: "task.agent.temperature", description: `must be >= 0, got ${t}` });
  if (problems.length > 0) throw invalidFields(problems);
  return {
    tools: a.tools ?? [],
    maxTurns: a.maxTurns!,
    maxTokensPerTurn: a.maxTokensPerTurn!,
    contextBudget: a.contextBudget!,
    cellTimeoutMs: a.cellTimeoutSeconds! * 1000,
    episodeTimeoutMs: a.episodeTimeoutSeconds! * 1000,
    model: a.model!,
    temperature: t,
    topP: a.topP!,
  };
}
