// `l0 eval` as a user runs it (a child process, real sandboxed kernels, a scripted engine on
// loopback, a scripted judge): killed with SIGKILL part-way, then run again with the same
// command, it asks the engine only the questions it had not finished, and ends with every
// question recorded once, a summary and the terminal table.
import { expect } from "chai";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { detectCgroups } from "../../images/worker/sandbox/cgroup.js";
import { decode, startScriptedEngine, turn } from "../worker/fixtures/engine.js";
import { scriptedJudge } from "./fixtures/judge.js";

const N = 8;
const questionOf = (i: number): string => `Repeat the number ${100 + i}`;

/** The agent answers each question's number, wrong (plus one) for odd ones. */
const script = (prompt: string): ReturnType<typeof turn> => {
  const n = Number(/Repeat the number (\d+)/.exec(prompt)?.[1]);
  return turn("answer it", `submit_final_answer("${n % 2 === 0 ? n : n + 1}")`);
};

function lines(path: string): { id: string; status: string; em: number }[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { id: string; status: string; em: number }];
      } catch {
        return [];
      }
    });
}

async function until(cond: () => boolean, what: string, child: ChildProcess): Promise<void> {
  let exited = false;
  child.once("exit", () => (exited = true));
  while (!cond()) {
    if (exited) throw new Error(`l0 eval exited before ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("l0 eval process", function () {
  this.timeout(120_000);

  it("resumes after a SIGKILL without asking finished questions again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-eval-"));
    const data = join(dir, "qa.jsonl");
    writeFileSync(
      data,
      Array.from({ length: N }, (_, i) =>
        JSON.stringify({ id: `q${i}`, question: questionOf(i), answer: String(100 + i) }),
      ).join("\n") + "\n",
    );
    const engine = await startScriptedEngine(script);
    const judge = await scriptedJudge();
    engine.setDelay(200);
    const out = join(dir, "out");
    const results = join(out, "results.jsonl");
    const args = [
      "bin/l0.js",
      "eval",
      "--data",
      data,
      "--out",
      out,
      "--engine-url",
      engine.url,
      "--model",
      "tiny",
      "--judge-url",
      judge.url,
      "--concurrency",
      "2",
      "--log-level",
      "warn",
      "--sandbox-mode",
      detectCgroups().pidsParent ? "strict" : "weak",
      "--uid-base",
      String(400_000 + (process.pid % 1000) * 100),
      "--uid-range",
      "100",
    ];
    const questionsAsked = (from: number): Set<string> =>
      new Set(
        engine.log.completions.slice(from).map((c) => /Repeat the number (\d+)/.exec(decode(c.prompt))![1]!),
      );
    try {
      const first = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
      await until(() => lines(results).length >= 3, "3 results", first);
      first.kill("SIGKILL");
      await new Promise((r) => first.once("exit", r));
      const before = lines(results)
        .filter((r) => r.status === "scored")
        .map((r) => r.id);
      expect(before.length).to.be.within(3, N - 1);
      const asked = engine.log.completions.length;

      const second = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      second.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
      let stderr = "";
      second.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise((r) => second.once("exit", r));
      expect(code, stderr).to.equal(0);

      const again = questionsAsked(asked);
      for (const id of before)
        expect(again.has(String(100 + Number(id.slice(1)))), `${id} asked again`).to.equal(false);
      const all = lines(results);
      const ids = all.map((r) => r.id);
      expect(new Set(ids).size, "each question recorded once").to.equal(ids.length);
      expect(ids.sort()).to.deep.equal(Array.from({ length: N }, (_, i) => `q${i}`).sort());
      const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
      expect(summary).to.deep.include({ questions: N, scored: N, failed: 0, em: 0.5, complete: true });
      expect(summary.judge).to.deep.include({ correct: N / 2, incorrect: N / 2, notAttempted: 0, failed: 0 });
      expect(stdout).to.match(/exact match\s+50\.0%/);
    } finally {
      await engine.close();
      await judge.close();
    }
  });
});
