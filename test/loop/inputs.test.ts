// `l0 local` off the happy path, as a new user meets it: copies of examples/tiny-qa.yaml naming a
// file that is not there stop at once (exit 2, the field and the path, no stack trace, nothing
// started), and a dataset of another wording with no demonstrations (no spec.warmStart) runs to
// the end from the model as is.
import { expect } from "chai";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { ROOT, startLocal } from "./run-local.js";
import { skipUnlessReadableBy } from "../fixtures/uid.js";

const EXAMPLES = join(ROOT, "examples");

/** examples/tiny-qa.yaml with absolute paths, `edit` applied to its spec. */
function tinyQa(edit: (spec: Record<string, any>) => void): string {
  const run = parse(readFileSync(join(EXAMPLES, "tiny-qa.yaml"), "utf8")) as { spec: Record<string, any> };
  const s = run.spec;
  s.dataset.path = join(EXAMPLES, s.dataset.path);
  s.dataset.evalPath = join(EXAMPLES, s.dataset.evalPath);
  s.warmStart.path = join(EXAMPLES, s.warmStart.path);
  s.workers.tools.search.corpusPath = join(EXAMPLES, s.workers.tools.search.corpusPath);
  edit(s);
  return stringify(run);
}

describe("l0 local: inputs", function () {
  this.timeout(180_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "l0-inputs-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const missing = join("/nonexistent", "l0-missing.jsonl");
  const cases: [string, string, (s: Record<string, any>) => void][] = [
    ["train file", "spec.dataset.path", (s) => (s.dataset.path = missing)],
    ["eval file", "spec.dataset.evalPath", (s) => (s.dataset.evalPath = missing)],
    [
      "search corpus",
      "spec.workers.tools.search.corpusPath",
      (s) => (s.workers.tools.search.corpusPath = missing),
    ],
    ["demonstrations file", "spec.warmStart.path", (s) => (s.warmStart.path = missing)],
  ];
  for (const [what, field, edit] of cases)
    it(`a missing ${what} exits 2 with ${field} and the path, no stack trace, nothing started`, async () => {
      const file = join(dir, `${field}.yaml`);
      const runDir = join(dir, `run-${field}`);
      writeFileSync(file, tinyQa(edit));
      const run = startLocal(file, runDir);
      expect(await run.done).to.equal(2, run.out());
      expect(run.out()).to.contain(`${field}: cannot read ${missing}: no such file`);
      expect(run.out()).not.to.match(/^\s+at /m);
      expect(existsSync(join(runDir, "pids.json")), "a process was started").to.equal(false);
    });

  it("a model that needs an engine and names none is refused before anything starts, naming spec.inference", async () => {
    const file = join(dir, "hf-no-engine.yaml");
    const runDir = join(dir, "run-hf-no-engine");
    writeFileSync(
      file,
      tinyQa((s) => {
        s.model.name = "Qwen/Qwen2.5-0.5B-Instruct";
        delete s.warmStart;
      }),
    );
    const run = startLocal(file, runDir);
    expect(await run.done).to.equal(2, run.out());
    expect(run.out()).to.contain("spec.inference");
    expect(run.out()).not.to.match(/^\s+at /m);
    expect(existsSync(join(runDir, "pids.json")), "a process was started").to.equal(false);
  });

  it("a model this machine cannot run stops the run with the reason, restarting nothing", async () => {
    const file = join(dir, "hf.yaml");
    const runDir = join(dir, "run-hf");
    writeFileSync(
      file,
      tinyQa((s) => {
        s.model.name = "Qwen/Qwen2.5-0.5B-Instruct";
        s.inference = { engine: "vllm", replicas: 1 };
        delete s.warmStart;
      }),
    );
    // Here the engines are the learner's CPU engine, which serves only the tiny model, and the
    // trainer's learner needs transformers (and a GPU) for it: whichever says so first, it is a
    // configuration failure of this machine (exit 2), not a crash to retry. The learner's own
    // classification of load failures is table-tested in test/learner/py/test_exit_codes.py.
    const run = startLocal(file, runDir, { env: { L0_PYTHON: process.env.L0_PYTHON ?? "/usr/bin/python3" } });
    expect(await run.done).to.equal(2, run.out());
    const out = run.out();
    expect(out, out).to.match(
      /stopped on its configuration or input \(exit code 2\); (the run stops|stopping the run)/,
    );
    expect(out, out).to.match(
      /\| .*(learner: cannot start: .*Qwen\/Qwen2.5-0.5B-Instruct|serves a built-in CPU model)/,
    );
    expect(out).not.to.contain("restarting");
  });

  /** A dataset of another wording ("Please add 5 and 0.") and a run of it with no warm start. */
  function sums(): string {
    const rows = (n: number, off: number) =>
      Array.from({ length: n }, (_, i) =>
        JSON.stringify({ question: `Please add ${i + off} and ${2 * i}.`, answer: String(3 * i + off) }),
      ).join("\n") + "\n";
    writeFileSync(join(dir, "train.jsonl"), rows(20, 5));
    writeFileSync(join(dir, "eval.jsonl"), rows(4, 100));
    const file = join(dir, "sums.yaml");
    writeFileSync(
      file,
      `apiVersion: l0.dev/v1alpha1
kind: TrainingRun
metadata: { name: sums }
spec:
  model: { name: tiny }
  dataset: { path: train.jsonl, evalPath: eval.jsonl }
  algorithm: { name: grpo, groupSize: 2, batchSize: 2, maxSteps: 2, dynamicSampling: false }
  agent: { maxTurns: 1, maxTokensPerTurn: 16, contextBudget: 1000, tools: [] }
  workers: { replicas: 1, episodesPerWorker: 2 }
`,
    );
    return file;
  }

  it("runs a dataset of another wording without demonstrations to the end", async () => {
    const file = sums();
    const runDir = join(dir, "run-sums");
    const run = startLocal(file, runDir, { env: { L0_LEARNER_SEED: "1" } });
    expect(await run.done).to.equal(0, run.out());
    expect(run.out()).to.contain("no warm start");
    expect(run.out()).to.contain("l0 local: done.");
    const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as { steps: number };
    expect(summary.steps).to.equal(2);
  });

  it("runs without root: weak sandbox (bwrap in a user namespace), saying what it cannot enforce", async function () {
    if (process.getuid?.() !== 0) this.skip(); // switching to another uid needs root
    skipUnlessReadableBy(this, 65534); // ...and a checkout that uid can read
    const file = sums();
    chmodSync(dir, 0o755);
    const runDir = join(dir, "run-nobody");
    mkdirSync(runDir, { mode: 0o777 });
    chmodSync(runDir, 0o777);
    const run = startLocal(file, runDir, { uid: 65534, env: { L0_LEARNER_SEED: "1", HOME: runDir } });
    expect(await run.done).to.equal(0, run.out());
    expect(run.out()).to.match(/sandbox: weak \(no writable pids cgroup; running as uid 65534\)/);
    expect(run.out()).to.contain("not enforced: a uid per kernel");
    expect(run.out()).to.contain("l0 local: done.");
  });
});
