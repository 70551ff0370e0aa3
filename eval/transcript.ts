// `l0 trajectories FILE`: one trajectory as a readable transcript, from the trainer's
// trajectories.jsonl (a step's sampled episodes) or `l0 eval`'s results.jsonl (same turn shape).
// Pure rendering; the command picks the record.
import { readFileSync } from "node:fs";
import { invalidField } from "../lib/errors.js";

interface Turn {
  response: string;
  observation: string;
  outcome: string;
  formatOk: boolean;
}

/** The fields either file has (the rest are optional). */
export interface TranscriptRecord {
  id?: string;
  trajectoryId?: string;
  step?: number;
  policyVersion?: number;
  question: string;
  answers?: string[];
  end: string;
  endDetail: string;
  finalAnswer: string | null;
  reward: number;
  em: number;
  f1: number;
  turnRewards?: number[];
  advantages?: number[];
  judge?: { judgement: string } | null;
  turns: Turn[];
}

const indent = (text: string): string =>
  text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");

export function transcript(r: TranscriptRecord): string {
  const head = [
    r.step !== undefined ? `step ${r.step}, policy version ${r.policyVersion}` : `question ${r.id ?? ""}`,
    `trajectory ${r.trajectoryId ?? r.id ?? "?"}`,
  ].join(" | ");
  const out = [head, `Question: ${r.question}`];
  if (r.answers) out.push(`Reference: ${r.answers.join(" | ")}`);
  r.turns.forEach((t, i) => {
    const rw = r.turnRewards?.[i];
    const adv = r.advantages?.[i];
    const figures = [
      t.formatOk ? "format ok" : "format error",
      t.outcome.replace(/^EXEC_OUTCOME_/, "").toLowerCase(),
      ...(rw !== undefined ? [`reward ${rw.toFixed(3)}`] : []),
      ...(adv !== undefined ? [`advantage ${adv.toFixed(3)}`] : []),
    ];
    out.push(
      `--- turn ${i + 1} (${figures.join(", ")})`,
      "  model:",
      indent(t.response),
      "  output:",
      indent(t.observation),
    );
  });
  out.push(
    `--- end: ${r.end.replace(/^EPISODE_END_/, "").toLowerCase()}${r.endDetail ? ` (${r.endDetail})` : ""}`,
    `Final answer: ${r.finalAnswer ?? "(none)"}`,
    `EM ${r.em}, F1 ${r.f1.toFixed(3)}, reward ${r.reward.toFixed(3)}` +
      (r.judge ? `, judge ${r.judge.judgement}` : ""),
  );
  return out.join("\n");
}

/** Picks a record: by id (trajectory or question), else the `index`-th of `step` (or of the file). */
export function pick(path: string, o: { step?: number; index: number; id?: string }): TranscriptRecord {
  const recs = readFileSync(path, "utf8")
    .split("\n")
    .flatMap((l, i) => {
      if (!l.trim()) return [];
      try {
        return [JSON.parse(l) as TranscriptRecord];
      } catch {
        throw invalidField(`${path}:${i + 1}`, "not valid JSON");
      }
    });
  const pool = o.id
    ? recs.filter((r) => r.trajectoryId === o.id || r.id === o.id)
    : o.step !== undefined
      ? recs.filter((r) => r.step === o.step)
      : recs;
  const r = pool[o.index < 0 ? pool.length + o.index : o.index];
  if (!r)
    throw invalidField(
      path,
      `no trajectory ${o.id ? `with id ${o.id}` : `at index ${o.index}${o.step !== undefined ? ` of step ${o.step}` : ""}`} (${pool.length} there)`,
    );
  return r;
}
