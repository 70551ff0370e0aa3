// Pure parts of the agent: the turn format, the notebook (observations, trimming that keeps the
// notepad), the kernel channel's framing, and the engine response reader.
import { expect } from "chai";
import fc from "fast-check";
import { parseTurn, stripFences } from "../../images/worker/agent/format.js";
import {
  buildMessages,
  firstKeptCell,
  renderObservation,
  truncate,
} from "../../images/worker/agent/notebook.js";
import { EngineError, parseCompletion } from "../../images/worker/engine.js";
import { FrameDecoder, ProtocolError, encodeFrame } from "../../images/worker/sandbox/framing.js";
import { type CellResult } from "../../images/worker/sandbox/kernel.js";
import { parseCorpus, LocalCorpus } from "../../images/worker/tools.js";

describe("worker agent: turn format", () => {
  const cases: [string, string, boolean, RegExp | string][] = [
    ["well formed", "<think>add</think>\n<code>\nx = 1\n</code>", false, "x = 1"],
    ["stopped on </code>", "<think>add</think><code>print(2)", true, "print(2)"],
    ["fenced code", "<think>t</think><code>\n```python\nprint(3)\n```\n</code>", false, "print(3)"],
    ["no code block", "<think>hmm</think> the answer is 4", false, /no <code> block/],
    ["two code blocks", "<think>t</think><code>a=1</code><code>b=2</code>", false, /more than one <code>/],
    ["unclosed code (ran out of tokens)", "<think>t</think><code>x = (", false, /unclosed <code>/],
    ["no think", "<code>x=1</code>", false, /missing <think>/],
    ["think after code", "<code>x=1</code><think>t</think>", false, /must come before/],
    ["unclosed think", "<think>t <code>x=1</code>", false, /missing <think>/],
    ["empty code", "<think>t</think><code>  </code>", false, /empty <code>/],
    ["two thinks", "<think>a</think><think>b</think><code>x</code>", false, /more than one <think>/],
  ];
  for (const [name, text, stopped, want] of cases) {
    it(name, () => {
      const p = parseTurn(text, stopped);
      if (typeof want === "string") {
        expect(p.ok).to.equal(true);
        expect(p.ok && p.code).to.equal(want);
      } else {
        expect(p.ok).to.equal(false);
        expect(!p.ok && p.error).to.match(want);
      }
    });
  }

  it("never throws on arbitrary text", () => {
    fc.assert(fc.property(fc.string(), fc.boolean(), (s, b) => typeof parseTurn(s, b).ok === "boolean"));
  });

  it("strips only a fence that wraps the whole cell", () => {
    expect(stripFences("x = '```'\n")).to.equal("x = '```'");
  });
});

const cell = (over: Partial<CellResult>): CellResult => ({
  outcome: "ok",
  stdout: "",
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
  ...over,
});

describe("worker agent: notebook", () => {
  it("renders output, value and error, and says when the kernel died", () => {
    expect(renderObservation(cell({ stdout: "hi\n", result: "2" }), 1000).text).to.equal("hi\nOut: 2");
    expect(renderObservation(cell({}), 1000).text).to.equal("[no output]");
    const dead = renderObservation(
      cell({ outcome: "killed", kernelAlive: false, detail: "the kernel was killed by SIGKILL" }),
      1000,
    ).text;
    expect(dead).to.match(/killed by SIGKILL; the kernel was restarted and earlier variables are gone/);
  });

  it("truncates to the budget, keeps head and tail, and counts what was cut", () => {
    const t = truncate("a".repeat(700) + "b".repeat(300), 100);
    expect(t.cut).to.equal(900);
    expect(t.text.startsWith("a".repeat(70))).to.equal(true);
    expect(t.text.endsWith("b".repeat(30))).to.equal(true);
    expect(t.text).to.include("[... 900 characters cut ...]");
    const o = renderObservation(cell({ stdout: "x".repeat(50), truncatedBytes: 1000 }), 40);
    expect(o.cut).to.be.greaterThan(1000);
  });

  it("keeps the newest cells that fit the budget", () => {
    const cells = [100, 100, 100, 100].map((tokens) => ({ tokens }));
    expect(firstKeptCell(cells, 50, 1000)).to.equal(0);
    expect(firstKeptCell(cells, 50, 260)).to.equal(2);
    expect(firstKeptCell(cells, 50, 100)).to.equal(4);
  });

  it("property: kept cells always fit and are a suffix", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 500 })),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 3000 }),
        (ts, fixed, budget) => {
          const cells = ts.map((tokens) => ({ tokens }));
          const first = firstKeptCell(cells, fixed, budget);
          const used = fixed + ts.slice(first).reduce((a, b) => a + b, 0);
          return first >= 0 && first <= ts.length && (first === ts.length || used <= budget);
        },
      ),
    );
  });

  it("drops old cells but always shows the notepad", () => {
    const cells = [1, 2, 3].map((i) => ({
      response: `<think>t${i}</think><code>c${i}</code>`,
      observation: `o${i}`,
      tokens: 10,
    }));
    const notepad = { facts: ["Velmir was founded in 1694"], todo: ["add one"], draft: "" };
    const msgs = buildMessages({ tools: ["search", "notepad"], task: "Q?", cells, firstKept: 2, notepad });
    const all = msgs.map((m) => m.content).join("\n");
    expect(all).to.not.include("c1");
    expect(all).to.include("c3");
    expect(all).to.include("2 earlier cell(s) were dropped");
    expect(msgs[msgs.length - 1]!.content).to.include("Velmir was founded in 1694");
    // Roles alternate after the system prompt, as chat templates expect.
    for (let i = 2; i < msgs.length; i++) expect(msgs[i]!.role).to.not.equal(msgs[i - 1]!.role);
    const none = buildMessages({ tools: [], task: "Q?", cells, firstKept: 3, notepad });
    expect(none.map((m) => m.content).join("\n")).to.include("Velmir");
  });
});

describe("worker sandbox: channel framing", () => {
  const result = { t: "result", id: "n1", ok: true, stdout: "x", notepad: { facts: ["f"] } };

  it("decodes frames split at any byte", () => {
    const bytes = Buffer.concat([encodeFrame({ t: "ready", pid: 7 }), encodeFrame(result)]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: bytes.length - 1 }), (cut) => {
        const d = new FrameDecoder();
        const frames = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
        return frames.length === 2 && frames[1]!.t === "result" && d.pendingBytes === 0;
      }),
    );
  });

  const bad: [string, Buffer, RegExp][] = [
    ["an oversized length", Buffer.from([0xff, 0xff, 0xff, 0xff, 1]), /exceeds/],
    ["invalid JSON", Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from("{{{")]), /not valid JSON/],
    ["a non-object", encodeFrame([1, 2]), /not a JSON object/],
    ["an unknown type", encodeFrame({ t: "shell" }), /unknown type/],
    ["a result without a nonce", encodeFrame({ t: "result" }), /result.id/],
    ["a result with a numeric id", encodeFrame({ t: "result", id: 2 }), /result.id/],
    ["a tool call without an integer id", encodeFrame({ t: "tool", id: "x", name: "search" }), /tool.id/],
    ["a tool call without name", encodeFrame({ t: "tool", id: 1 }), /tool.name/],
  ];
  for (const [name, bytes, re] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => new FrameDecoder().push(bytes)).to.throw(ProtocolError, re);
    });
  }

  it("caps text fields from the kernel", () => {
    const [f] = new FrameDecoder(1 << 20, 10).push(encodeFrame({ ...result, stdout: "y".repeat(100) }));
    expect(f!.t === "result" && f!.stdout.length).to.equal(10);
  });
});

describe("worker engine: completion responses", () => {
  it("reads token_ids, or token_id:N strings, and logprobs", () => {
    const c = parseCompletion({
      choices: [
        {
          text: "ab",
          finish_reason: "stop",
          stop_reason: "</code>",
          logprobs: { tokens: ["token_id:97", "token_id:98"], token_logprobs: [-0.5, -1] },
        },
      ],
      policy_version: 4,
    });
    expect(c).to.deep.include({
      tokenIds: [97, 98],
      logprobs: [-0.5, -1],
      stopReason: "</code>",
      policyVersion: 4,
    });
  });

  it("refuses, retryably, an answer from an engine that serves no policy version yet", () => {
    const choices = [{ token_ids: [1], logprobs: { token_logprobs: [-0.1] } }];
    for (const v of [-1, 1.5, "3"]) {
      let err: unknown;
      try {
        parseCompletion({ choices, policy_version: v });
      } catch (e) {
        err = e;
      }
      expect(err, String(v)).to.be.instanceOf(EngineError);
      expect((err as EngineError).retryable).to.equal(true);
      expect((err as EngineError).message).to.contain("serves no policy version");
    }
    expect(parseCompletion({ choices, policy_version: 0 }).policyVersion).to.equal(0);
    expect(parseCompletion({ choices }).policyVersion).to.equal(null);
  });

  it("names what is missing", () => {
    expect(() => parseCompletion({})).to.throw(/choices\[0\] is missing/);
    expect(() => parseCompletion({ choices: [{ text: "a" }] })).to.throw(/token_ids/);
    expect(() =>
      parseCompletion({ choices: [{ token_ids: [1, 2], logprobs: { token_logprobs: [0] } }] }),
    ).to.throw(/one number per token \(2\)/);
    expect(() =>
      parseCompletion({ choices: [{ token_ids: [1, 2], logprobs: { token_logprobs: [-0.1, null] } }] }),
    ).to.throw(/token_logprobs\[1\] is null, not a finite number/);
  });
});

describe("worker tools: offline corpus", () => {
  const corpus = new LocalCorpus(
    parseCorpus(
      [
        '{"id":"doc-0","title":"Velmir","text":"Velmir is a town. Velmir was founded in 1694."}',
        "",
        '{"id":"doc-1","title":"Zarqufen","text":"Zarqufen was founded in 1541."}',
      ].join("\n"),
      "corpus.jsonl",
    ),
  );

  it("ranks the matching document first and reads it by id", async () => {
    const hits = await corpus.search("When was Velmir founded?");
    expect(hits.split("\n")[0]).to.include("[doc-0] Velmir");
    expect(await corpus.read("doc-1")).to.include("1541");
    await corpus.read("nope").then(
      () => expect.fail("read of an unknown id must fail"),
      (e: Error) => expect(e.message).to.match(/no document/),
    );
  });

  it("names the bad line of a corpus", () => {
    expect(() => parseCorpus('{"id":1,"text":"ok"}\n{oops', "c.jsonl")).to.throw(/c.jsonl:2: not valid JSON/);
    expect(() => parseCorpus('{"id":1}', "c.jsonl")).to.throw(/c.jsonl:1.text: must be a string/);
  });
});
