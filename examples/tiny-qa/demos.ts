// Writes tiny-qa's warm-start demonstrations (examples/tiny-qa/demos.jsonl, which
// examples/tiny-qa.yaml names in spec.warmStart): oracle NB-Agent episodes rendered with the
// worker's own notebook code (buildMessages, the system prompt) so the learner trains on exactly
// the chat the agent will see. Each demo is one turn: a cell that reads the question from the
// kernel's `task`, lets the kernel compute or search, and submits the result. Deterministic:
//   npx tsx examples/tiny-qa/demos.ts [count] [out]   (default 450 -> examples/tiny-qa/demos.jsonl)
// No program imports this file: a run names the JSONL it writes.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildMessages } from "../../images/worker/agent/notebook.js";
import { type ChatMessage } from "../../images/worker/engine.js";
import { readJsonl } from "../jsonl.js";

export interface DemoQuestion {
  question: string;
  answer: string;
  kind?: string;
}

/**
 * Pure: the oracle turn for a question, or null when the question has no known shape. The cell
 * reads the question from the kernel's `task` variable instead of copying it: a small byte-level
 * policy learns a program far more easily than it learns to copy digits and names reliably.
 */
export function demoResponse(q: DemoQuestion): string | null {
  // "What is " is 8 characters; the expression runs to the "?".
  if (/^What is \d+ [*+] \d+\?$/.test(q.question))
    return `<think>Compute it.</think>\n<code>\nsubmit_final_answer(eval(task[8:-1]))\n</code>`;
  // "In which year was " is 18 characters, " founded?" 9: the town's name lies between.
  if (/^In which year was \w+ founded\?$/.test(q.question))
    return `<think>Search it.</think>\n<code>\nsubmit_final_answer(search(task[18:-9]).split("founded in ")[1][:4])\n</code>`;
  return null;
}

/** Pure: the demo as chat messages, the notebook exactly as the worker renders its first turn. */
export function demoMessages(q: DemoQuestion, tools: string[]): ChatMessage[] | null {
  const response = demoResponse(q);
  if (response === null) return null;
  const msgs = buildMessages({ tools, task: q.question, cells: [], firstKept: 0, notepad: null });
  return [...msgs, { role: "assistant", content: response }];
}

/** Pure: JSONL text of `count` demos drawn from the head of `questions`. */
export function demosJsonl(questions: readonly DemoQuestion[], tools: string[], count: number): string {
  const lines: string[] = [];
  for (const q of questions) {
    if (lines.length >= count) break;
    const messages = demoMessages(q, tools);
    if (messages) lines.push(JSON.stringify({ messages }));
  }
  return lines.join("\n") + "\n";
}

export const readQuestions = (path: string): DemoQuestion[] => readJsonl<DemoQuestion>(path);

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const count = Number(process.argv[2] ?? 450);
  const out = process.argv[3] ?? join(here, "demos.jsonl");
  // The tail of train.jsonl, so the RL phase (which starts at the head in seeded order) sees
  // mostly questions the warm start did not. The tools are tiny-qa.yaml's spec.agent.tools.
  const train = readQuestions(join(here, "train.jsonl")).reverse();
  writeFileSync(out, demosJsonl(train, ["search"], count));
  process.stdout.write(`wrote ${count} demonstrations to ${out}\n`);
}
