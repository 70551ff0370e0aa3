// Generates tiny-multihop's task sets for `l0 local -f examples/tiny-multihop.yaml`: questions whose
// answer needs a fact only the `search` tool returns, then arithmetic on that fact. Deterministic
// (seeded); run
//   npx tsx examples/tiny-multihop/generate.ts
// to rewrite train.jsonl, eval.jsonl and corpus.jsonl next to this file.
//
// "How old was Velmir in 2000?": the year is in no question, only in the
// fictional corpus, and the corpus words it one of two ways ("Velmir was founded in 1694." or
// "Velmir was settled in 1694."). So the agent looks the town up and prints what the corpus says
// (turn 1), then reads which wording it got and extracts the year with the matching program (turn
// 2). A policy that does not read the first cell's output picks the wrong program half the time.
// The held-out towns are never in a training question or demonstration.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { mulberry32 } from "../../lib/rng.js";
import { toJsonl } from "../jsonl.js";
import { type Doc, makeName } from "../tiny-qa/generate.js";

export interface Question {
  id: string;
  question: string;
  answer: string;
  kind: MultihopKind;
}

export type MultihopKind = "age2000";

/** The two ways the corpus words a town's year; only the printed search result tells which. */
export const VERBS = ["founded", "settled"] as const;
export type Verb = (typeof VERBS)[number];

/** The question templates; the town's name is the only part that varies within a kind. */
export const TEMPLATES: Record<
  MultihopKind,
  { text: (town: string) => string; answer: (year: number) => number }
> = {
  age2000: { text: (t) => `How old was ${t} in 2000?`, answer: (y) => 2000 - y },
};

const TOWNS = 840;
const EVAL_TOWNS = 200;

export function generate(seed = 11): { train: Question[]; evalSet: Question[]; corpus: Doc[] } {
  const r = mulberry32(seed);
  const used = new Set<string>();
  const corpus: Doc[] = [];
  const byTown: Question[][] = [];
  for (let i = 0; i < TOWNS; i++) {
    const town = makeName(r, used);
    const founded = 1100 + Math.floor(r() * 851);
    const verb = VERBS[Math.floor(r() * VERBS.length)]!;
    corpus.push({
      id: `doc-${i}`,
      title: town,
      text: `${town} is a town. ${town} was ${verb} in ${founded}.`,
    });
    byTown.push(
      (Object.keys(TEMPLATES) as MultihopKind[]).map((kind) => ({
        id: `${kind}-${i}`,
        question: TEMPLATES[kind].text(town),
        answer: String(TEMPLATES[kind].answer(founded)),
        kind,
      })),
    );
  }
  const shuffle = (qs: Question[]) =>
    qs
      .map((q) => [r(), q] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([, q]) => q);
  // Held-out: both questions of the first EVAL_TOWNS towns; training: the rest, interleaved.
  return {
    train: shuffle(byTown.slice(EVAL_TOWNS).flat()),
    evalSet: shuffle(byTown.slice(0, EVAL_TOWNS).flat()),
    corpus,
  };
}

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { train, evalSet, corpus } = generate();
  writeFileSync(join(here, "train.jsonl"), toJsonl(train));
  writeFileSync(join(here, "eval.jsonl"), toJsonl(evalSet));
  writeFileSync(join(here, "corpus.jsonl"), toJsonl(corpus));
  console.log(
    `tiny-multihop: ${train.length} train, ${evalSet.length} eval questions, ${corpus.length} documents`,
  );
}
