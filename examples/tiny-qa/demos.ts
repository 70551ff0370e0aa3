// Demonstration traces for the supervised warm start of `l0 local`: oracle NB-Agent episodes
// rendered with the worker's own notebook code (buildMessages, the system prompt) so the learner
// trains on exactly the chat the agent will see. Each demo is one turn: copy the question's
// numbers or name into a cell that lets the kernel do the work and submits the result.
//   npx tsx examples/tiny-qa/demos.ts [count] [out]   (default 300 -> examples/tiny-qa/demos.jsonl)
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildMessages, type ChatMessage } from "../../images/worker/agent/notebook.js";

export interface DemoQuestion {
  question: string;
  answer: string;
  kind?: string;
}

/** Pure: the oracle turn for a question, or null when the question has no known shape. */
export function demoResponse(q: DemoQuestion): string | null {
  const arith = /^What is (\d+) ([*+]) (\d+)\?$/.exec(q.question);
  if (arith)
    return `<think>Compute it in Python.</think>\n<code>\nsubmit_final_answer(${arith[1]} ${arith[2]} ${arith[3]})\n</code>`;
  const look = /^In which year was (\w+) founded\?$/.exec(q.question);
  if (look)
    return `<think>Search the corpus.</think>\n<code>\nsubmit_final_answer(search("${look[1]}").split("founded in ")[1][:4])\n</code>`;
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

export function readQuestions(path: string): DemoQuestion[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as DemoQuestion);
}

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const count = Number(process.argv[2] ?? 300);
  const out = process.argv[3] ?? join(here, "demos.jsonl");
  // The tail of train.jsonl, so the RL phase (which starts at the head in seeded order) sees
  // mostly questions the warm start did not.
  const train = readQuestions(join(here, "train.jsonl")).reverse();
  writeFileSync(out, demosJsonl(train, ["search"], count));
  process.stdout.write(`wrote ${count} demonstrations to ${out}\n`);
}
