// Generates the tiny-qa task sets for `l0 local` (examples/tiny-qa.yaml): questions where code
// as action matters, small enough to check in. Deterministic (seeded); run
//   npx tsx examples/tiny-qa/generate.ts
// to rewrite train.jsonl, eval.jsonl and corpus.jsonl next to this file.
//
// Two kinds of task:
// - arithmetic the model cannot do in its head but can compute in the kernel
//   ("What is 487 * 36?" -> print(487 * 36) -> submit_final_answer(...)),
// - look-ups over a fictional corpus that need the `search` tool
//   ("In which year was Velmora founded?" -> search("Velmora") -> submit_final_answer("1642")).
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { mulberry32 } from "../../lib/rng.js";
import { toJsonl } from "../jsonl.js";

export interface Question {
  id: string;
  question: string;
  answer: string;
  kind: "arith" | "lookup";
}
export interface Doc {
  id: string;
  title: string;
  text: string;
}

const SYLLABLES = [
  "vel",
  "mor",
  "qu",
  "enth",
  "zar",
  "ith",
  "lo",
  "ban",
  "tor",
  "eck",
  "ryn",
  "dal",
  "fen",
  "ost",
  "ka",
  "mir",
];

export function makeName(r: () => number, used: Set<string>): string {
  for (;;) {
    const n = 2 + Math.floor(r() * 2);
    let s = "";
    for (let i = 0; i < n; i++) s += SYLLABLES[Math.floor(r() * SYLLABLES.length)];
    const name = s[0]!.toUpperCase() + s.slice(1);
    if (!used.has(name) && name.length <= 10) {
      used.add(name);
      return name;
    }
  }
}

export function generate(seed = 7): { train: Question[]; evalSet: Question[]; corpus: Doc[] } {
  const r = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const used = new Set<string>();
  const corpus: Doc[] = [];
  const lookups: Question[] = [];
  for (let i = 0; i < 160; i++) {
    const city = makeName(r, used);
    const founded = int(1100, 1950);
    corpus.push({
      id: `doc-${i}`,
      title: city,
      text: `${city} is a town. ${city} was founded in ${founded}.`,
    });
    lookups.push({
      id: `lookup-${i}`,
      question: `In which year was ${city} founded?`,
      answer: String(founded),
      kind: "lookup",
    });
  }
  const ariths: Question[] = [];
  const seen = new Set<string>();
  while (ariths.length < 1400) {
    const a = int(12, 999);
    const b = int(12, 99);
    const op = r() < 0.5 ? "*" : "+";
    const question = `What is ${a} ${op} ${b}?`;
    if (seen.has(question)) continue;
    seen.add(question);
    const answer = String(op === "*" ? a * b : a + b);
    ariths.push({ id: `arith-${ariths.length}`, question, answer, kind: "arith" });
  }
  // Held-out: questions never seen in training (different numbers, different towns).
  const evalSet = [...ariths.slice(0, 150), ...lookups.slice(0, 50)];
  const train = [...ariths.slice(150), ...lookups.slice(50)];
  // Interleave kinds deterministically so every batch sees both.
  train.sort((x, y) => (x.id < y.id ? -1 : 1));
  const shuffled = train
    .map((q) => [r(), q] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([, q]) => q);
  // The held-out set is interleaved too: a run that evaluates on its first evalSize questions
  // (spec.dataset.evalSize) then scores both kinds in their proportion.
  const evalShuffled = evalSet
    .map((q) => [r(), q] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([, q]) => q);
  return { train: shuffled, evalSet: evalShuffled, corpus };
}

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { train, evalSet, corpus } = generate();
  writeFileSync(join(here, "train.jsonl"), toJsonl(train));
  writeFileSync(join(here, "eval.jsonl"), toJsonl(evalSet));
  writeFileSync(join(here, "corpus.jsonl"), toJsonl(corpus));
  console.log(`tiny-qa: ${train.length} train, ${evalSet.length} eval questions, ${corpus.length} documents`);
}
