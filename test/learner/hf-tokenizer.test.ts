// The tiny model's tokenizer files, read by Hugging Face's own implementations: tokenizers.js
// loads tokenizer.json + tokenizer_config.json and must give our ByteTokenizer's ids for every
// string (bytes keep ids 0..255 through ByteLevel's character remapping); @huggingface/jinja
// renders the chat template to exactly what ByteTokenizer.render_chat produces, for hand-made
// conversations and for the worker's own notebook messages.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import { buildMessages } from "../../images/worker/agent/notebook.js";

const PY = "/usr/bin/python3";

interface Message {
  role: string;
  content: string;
}
interface Conversation {
  messages: Message[];
  add_generation_prompt: boolean;
}
interface Oracle {
  encode: number[][];
  chat: { ids: number[]; text: string }[];
  decode: string[];
}

const TEXTS = [
  "",
  "hello",
  " leading space, trailing space ",
  "  two  spaces\n\ttab\r\nCRLF",
  "héllo wörld, ñ, ß",
  "日本語のテキスト",
  "emoji 🤖 👍🏽 👨‍👩‍👧",
  "nul\u0000 del\u007f soft\u00adhyphen nbsp\u00a0",
  "Ġ and Ċ are ByteLevel's characters, not ours",
  "a<|user|>b<|x",
  "<|bos|><|end|><|system|><|user|><|assistant|><|pad|>",
  "<|unknown|> <|user| |user|>",
  "2+2=4\n",
];

const CONVERSATIONS: Conversation[] = [
  { messages: [{ role: "user", content: "What is 2+2?" }], add_generation_prompt: true },
  {
    messages: [
      { role: "system", content: "Answer briefly. Réponds en français si on te le demande." },
      { role: "user", content: "Quelle est la capitale ? 🏛️" },
      { role: "assistant", content: "Paris.\n" },
      { role: "user", content: "" },
    ],
    add_generation_prompt: true,
  },
  {
    messages: [
      { role: "user", content: "q" },
      { role: "assistant", content: "a" },
    ],
    add_generation_prompt: false,
  },
  { messages: [], add_generation_prompt: true },
];

function workerConversation(): Conversation {
  const messages = buildMessages({
    tools: ["search", "read", "notepad"],
    task: "Wie hoch ist die Zugspitze? (Antwort in Metern)",
    cells: [
      {
        response: "<think>search</think>\n<code>\nprint(search('Zugspitze Höhe'))\n</code>",
        observation: "[1] Zugspitze – 2962 m ü. NHN 🏔️",
        tokens: 40,
      },
      {
        response: "<code>\nsubmit_final_answer('2962')\n</code>",
        observation: "submitted",
        tokens: 12,
      },
    ],
    firstKept: 0,
    notepad: { facts: ["Höhe: 2962 m"], todo: ["check source"], draft: "2962" },
  });
  return { messages, add_generation_prompt: true };
}

function runOracle(dir: string, conversations: Conversation[], decode: number[][]): Oracle {
  const r = spawnSync(PY, ["test/learner/py/tokenizer_oracle.py"], {
    input: JSON.stringify({ dir, texts: TEXTS, conversations, decode }),
    encoding: "utf8",
    env: { ...process.env, OPENBLAS_NUM_THREADS: "1" },
    timeout: 60_000,
  });
  expect(r.status, r.stderr.slice(-4000)).to.equal(0);
  return JSON.parse(r.stdout) as Oracle;
}

describe("the tiny tokenizer in Hugging Face's format", function () {
  this.timeout(90_000);
  let dir: string;
  let ours: Oracle;
  let tokenizer: Tokenizer;
  let config: { chat_template: string; bos_token: string; eos_token: string; pad_token: string };
  const conversations = [...CONVERSATIONS, workerConversation()];
  // Whole and cut UTF-8 sequences: a lone continuation byte and a 3-byte character missing its end.
  const decodeCases = [
    [104, 105],
    [0xe6, 0x97],
    [0x80, 97],
    [256, 104, 257, 105, 261],
  ];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "l0-hf-tokenizer-"));
    ours = runOracle(dir, conversations, decodeCases);
    config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
    tokenizer = new Tokenizer(JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")), config);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it("gives our ids for every string, special tokens included", () => {
    TEXTS.forEach((text, i) => {
      expect(tokenizer.encode(text).ids, JSON.stringify(text)).to.deep.equal(ours.encode[i]);
    });
  });

  it("maps every byte UTF-8 text can hold to its own id, and each special token to ours", () => {
    // Node's UTF-8 encoder is the independent side: ASCII, all 2-byte characters, and 3- and
    // 4-byte ones whose lead bytes run through E0..F4 (C0, C1 and F5..FF never occur in UTF-8).
    const points = [...Array(0x800).keys()];
    for (let cp = 0x800; cp < 0x10000; cp += 0x3f) if (cp < 0xd800 || cp > 0xdfff) points.push(cp);
    for (let cp = 0x10000; cp <= 0x10ffff; cp += 0x1fff) points.push(cp);
    const text = String.fromCodePoint(...points);
    const bytes = [...Buffer.from(text, "utf8")];
    expect(new Set(bytes).size).to.equal(256 - 2 - 11);
    expect(tokenizer.encode(text).ids).to.deep.equal(bytes);
    expect(tokenizer.get_vocab(true).size).to.equal(262);
    expect(tokenizer.encode("<|assistant|>").ids).to.deep.equal([260]);
  });

  it("decodes as ours does, skipping special tokens and replacing cut UTF-8", () => {
    decodeCases.forEach((ids, i) => {
      expect(tokenizer.decode(ids, { skip_special_tokens: true }), JSON.stringify(ids)).to.equal(
        ours.decode[i],
      );
    });
  });

  it("renders the chat template to exactly our chat rendering, worker messages included", () => {
    conversations.forEach((c, i) => {
      const text = new Template(config.chat_template).render({ ...c, bos_token: config.bos_token });
      expect(text, `conversation ${i}`).to.equal(ours.chat[i]!.text);
      expect(Buffer.from(text, "utf8").equals(Buffer.from(ours.chat[i]!.text, "utf8"))).to.equal(true);
      expect(tokenizer.encode(text).ids, `conversation ${i}`).to.deep.equal(ours.chat[i]!.ids);
    });
  });

  it("refuses a role the template does not know, naming the message", () => {
    const render = () =>
      new Template(config.chat_template).render({
        messages: [{ role: "tool", content: "x" }],
        add_generation_prompt: true,
      });
    expect(render).to.throw(/messages\[0\]\.role: must be one of system, user, assistant/);
  });
});
