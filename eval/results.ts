// Per-question results of an evaluation: one JSON line each, appended as each question finishes
// (so a killed run loses at most the line being written), read back on resume (a torn last line
// is ignored and its question asked again), and summarized by the summary the in-run evaluation
// also reports (images/trainer/hub/scores.ts).
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { type Judgement } from "../images/trainer/hub/judge.js";
import { type Summary } from "../images/trainer/hub/scores.js";

export { summarize, type Summary } from "../images/trainer/hub/scores.js";

export interface TurnRecord {
  response: string;
  code: string;
  observation: string;
  outcome: string;
  formatOk: boolean;
}

export interface QuestionResult {
  id: string;
  question: string;
  answers: string[];
  /** scored: the episode ended for the agent's reasons; failed: infrastructure, after every attempt. */
  status: "scored" | "failed";
  end: string;
  endDetail: string;
  finalAnswer: string | null;
  em: number;
  f1: number;
  /** The training reward of this trajectory under the run's spec.reward (so eval and training agree). */
  reward: number;
  judge: { judgement: Judgement; attempts: number; detail: string } | null;
  episodeAttempts: number;
  durationSeconds: number;
  turns: TurnRecord[];
}

/** Results already written (finished questions, by id); a torn or foreign line is skipped. */
export function loadResults(path: string): Map<string, QuestionResult> {
  const done = new Map<string, QuestionResult>();
  if (!existsSync(path)) return done;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as QuestionResult;
      // A failed question is asked again on resume; the later line wins.
      if (typeof r.id === "string" && r.status === "scored") done.set(r.id, r);
      else if (typeof r.id === "string") done.delete(r.id);
    } catch {
      // the line a kill tore in half: that question is asked again
    }
  }
  return done;
}

export function appendResult(path: string, r: QuestionResult): void {
  appendFileSync(path, JSON.stringify(r) + "\n");
}

/** After a kill the file may end inside a line: start the next append on a fresh one. */
export function repairTail(path: string): void {
  if (!existsSync(path)) return;
  const text = readFileSync(path, "utf8");
  if (text.length > 0 && !text.endsWith("\n")) appendFileSync(path, "\n");
}

/** The summary as a two-column terminal table. */
export function summaryTable(s: Summary): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const rows: [string, string][] = [
    ["questions", String(s.questions)],
    ["scored", String(s.scored)],
    ["failed (infrastructure)", String(s.failed)],
    ["answered", String(s.answered)],
    ["exact match", pct(s.em)],
    ["F1", pct(s.f1)],
    ["reward (training recipe)", s.reward.toFixed(3)],
    ["mean turns", s.meanTurns.toFixed(2)],
  ];
  if (s.judge)
    rows.push(
      ["judge: correct", String(s.judge.correct)],
      ["judge: incorrect", String(s.judge.incorrect)],
      ["judge: not attempted", String(s.judge.notAttempted)],
      ["judge: failed (not graded)", String(s.judge.failed)],
      ["accuracy", pct(s.judge.accuracy)],
      ["accuracy given attempted", pct(s.judge.accuracyGivenAttempted)],
      ["F-score", pct(s.judge.fScore)],
    );
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}
