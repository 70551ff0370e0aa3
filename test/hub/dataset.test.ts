// Dataset loading: configurable fields, several acceptable answers, broken lines reported by
// line number and skipped (never fatal), and the seeded per-epoch order used for resume.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { isL0Error } from "../../lib/errors.js";
import { epochOrder, loadDataset, parseJsonl, QuestionSource } from "../../images/trainer/hub/dataset.js";

const F = { questionField: "q", answerField: "gold" };

describe("hub dataset", () => {
  it("reads configurable fields, single and multiple answers, and reports each broken line", () => {
    const text = [
      '{"q": "Capital of France?", "gold": "Paris"}',
      "",
      '{"q": "Largest ocean?", "gold": ["Pacific", "Pacific Ocean"]}',
      '{"q": "broken", "gold": ',
      '{"question": "wrong field", "gold": "x"}',
      '{"q": "empty answers", "gold": []}',
      "[1, 2]",
      '{"q": "2+2?", "gold": "4"}',
    ].join("\n");
    const ds = parseJsonl(text, F, "mem");
    expect(ds.questions.map((q) => [q.index, q.line, q.prompt, q.answers])).to.deep.equal([
      [0, 1, "Capital of France?", ["Paris"]],
      [1, 3, "Largest ocean?", ["Pacific", "Pacific Ocean"]],
      [2, 8, "2+2?", ["4"]],
    ]);
    expect(ds.errors.map((e) => e.line)).to.deep.equal([4, 5, 6, 7]);
    expect(ds.errors[0]!.message).to.match(/not valid JSON/);
    expect(ds.errors[1]!.message).to.contain('field "q"');
    expect(ds.errors[2]!.message).to.contain('field "gold"');
  });

  it("fails only when no line is usable, naming the field and the first bad line", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-hub-ds-"));
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, "not json\n");
    try {
      loadDataset(bad, F);
      expect.fail("should throw");
    } catch (err) {
      expect(isL0Error(err, "InvalidArgument")).to.equal(true);
      expect((err as Error).message).to.match(/^spec\.dataset\.path: .*line 1: not valid JSON/);
    }
    expect(() => loadDataset(join(dir, "missing.jsonl"), F)).to.throw(/spec\.dataset\.path: cannot read/);
  });

  it("draws every question once per epoch in a seeded order that a resumed source continues", () => {
    const order = epochOrder(20, 7, 0);
    expect([...order].sort((a, b) => a - b)).to.deep.equal([...Array(20).keys()]);
    expect(epochOrder(20, 7, 0)).to.deep.equal(order);
    expect(epochOrder(20, 7, 1)).to.not.deep.equal(order);
    const text = Array.from({ length: 5 }, (_, i) => JSON.stringify({ q: `q${i}`, gold: "a" })).join("\n");
    const ds = parseJsonl(text, F);
    const a = new QuestionSource(ds, 3);
    const first = Array.from({ length: 7 }, () => a.next().index);
    const b = new QuestionSource(ds, 3, { epoch: 1, position: 2 });
    const rest = Array.from({ length: 3 }, () => a.next().index);
    expect(Array.from({ length: 3 }, () => b.next().index)).to.deep.equal(rest);
    expect(new Set(first.slice(0, 5)).size).to.equal(5);
  });
});
