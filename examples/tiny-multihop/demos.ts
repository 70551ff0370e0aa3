// Writes tiny-multihop's warm-start demonstrations (examples/tiny-multihop/demos.jsonl, which
// examples/tiny-multihop.yaml names in spec.warmStart): two-turn oracle NB-Agent episodes rendered
// with the worker's own notebook code (buildMessages, renderObservation), so the learner trains on
// exactly the chat the agent sees. Turn 1 looks the town up and prints its founding year; turn 2
// reads the printed year from the observation and writes it into the arithmetic. Deterministic:
//   npx tsx examples/tiny-multihop/demos.ts [count] [out]   (default 400 -> demos.jsonl here)
// No program imports this file but its test: a run names the JSONL it writes.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildMessages, renderObservation } from "../../images/worker/agent/notebook.js";
import { type CellResult } from "../../images/worker/sandbox/cell-result.js";
import { type ChatMessage } from "../../images/worker/engine.js";
import { readJsonl } from "../jsonl.js";
import { type Doc } from "../tiny-qa/generate.js";
import { type MultihopKind, type Question, TEMPLATES, VERBS, type Verb } from "./generate.js";

/** Pure: where the town's name lies in a question of each kind, as a Python slice of `task`. */
export function townSlice(kind: MultihopKind): string {
  const marker = "\u0000";
  const text = TEMPLATES[kind].text(marker);
  const start = text.indexOf(marker);
  return `task[${start}:-${text.length - start - 1}]`;
}

/**
 * Pure: the two oracle turns. The first prints the top search result's text and defines `y(word)`,
 * the year after `word` in it; the second reads which wording was printed and calls `y` with it
 * (the other wording raises, and the error is what the agent then sees).
 */
export function demoTurns(q: Pick<Question, "kind">, verb: Verb): [string, string] {
  const look =
    `<think>Search.</think>\n<code>\nr = search(${townSlice(q.kind)}).split("\\n")[1]\n` +
    `y = lambda w: int(r.split(w)[1][4:8])\nprint(r)\n</code>`;
  return [look, `<think>It says ${verb}.</think>\n<code>\nsubmit_final_answer(2000 - y("${verb}"))\n</code>`];
}

/** Pure: what the worker shows after a cell that printed `stdout` and did nothing else. */
export function printedObservation(stdout: string): string {
  const r: CellResult = {
    outcome: "ok",
    stdout,
    stderr: "",
    result: null,
    error: null,
    truncatedBytes: 0,
    finalAnswer: null,
    notepad: null,
    seconds: 0,
    kernelAlive: true,
    detail: "",
    violation: false,
  };
  return renderObservation(r, 10_000).text;
}

/** Pure: the demo as chat messages, the notebook exactly as the worker renders its second turn. */
export function demoMessages(q: Question, doc: Doc, tools: string[]): ChatMessage[] {
  const verb = VERBS.find((v) => doc.text.includes(` ${v} in `));
  if (!verb) throw new Error(`${doc.id}: no founding year in "${doc.text}"`);
  const [look, use] = demoTurns(q, verb);
  const cells = [{ response: look, observation: printedObservation(`   ${doc.text}\n`), tokens: 0 }];
  const msgs = buildMessages({ tools, task: q.question, cells, firstKept: 0, notepad: null });
  return [...msgs, { role: "assistant", content: use }];
}

/** Pure: the corpus document of the town a question names (whole words: "Loenth" is not "Loenthban"). */
export function townDoc(q: Question, corpus: readonly Doc[]): Doc {
  const words = new Set(q.question.replace(/\?$/, "").split(" "));
  const doc = corpus.find((d) => words.has(d.title));
  if (!doc) throw new Error(`${q.id}: no town of the corpus in "${q.question}"`);
  return doc;
}

/** Pure: JSONL text of `count` demos drawn from the head of `questions`. */
export function demosJsonl(
  questions: readonly Question[],
  corpus: readonly Doc[],
  tools: string[],
  count: number,
): string {
  const lines = questions
    .slice(0, count)
    .map((q) => JSON.stringify({ messages: demoMessages(q, townDoc(q, corpus), tools) }));
  return lines.join("\n") + "\n";
}

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const count = Number(process.argv[2] ?? 400);
  const out = process.argv[3] ?? join(here, "demos.jsonl");
  // The tail of train.jsonl, so RL (which starts at the head in seeded order) sees mostly other towns.
  const train = readJsonl<Question>(join(here, "train.jsonl")).reverse();
  writeFileSync(out, demosJsonl(train, readJsonl<Doc>(join(here, "corpus.jsonl")), ["search"], count));
  process.stdout.write(`wrote ${count} demonstrations to ${out}\n`);
}
