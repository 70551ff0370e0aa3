// The notebook as the model sees it: system prompt, task, the kept cells with their
// observations, and the notepad (always kept, as NB-Agent does). Pure functions: rendering,
// observation truncation and the choice of which old cells to drop for the context budget.
import { type Notepad, cutText, wellFormed } from "../sandbox/framing.js";
import { type ChatMessage } from "../engine.js";
import { type CellResult } from "../sandbox/kernel.js";

export interface Cell {
  /** The model's turn as it was sampled (with `</code>` restored when the engine stopped on it). */
  response: string;
  observation: string;
  /** Exact response tokens (from the engine) plus an estimate for the observation. */
  tokens: number;
}

const TOOL_DOCS: Record<string, string> = {
  search: "search(query) -> str: ranked results, each with an [id] you can pass to read().",
  read: "read(id_or_url) -> str: the text of a search result.",
  notepad:
    "notepad.add_fact(text), notepad.add_todo(text), notepad.done(i), notepad.set_draft(text): " +
    "your notes; they stay visible when old cells are dropped from the context.",
};

export function systemPrompt(tools: string[]): string {
  const lines = [
    "You solve tasks by writing Python in a Jupyter-like notebook. Each turn, think, then write one code cell:",
    "<think>your reasoning</think>",
    "<code>",
    "python code",
    "</code>",
    "The cell runs in a persistent Python kernel (variables survive between cells); you then see its",
    "output. The kernel has no network: use the tools below. Available functions:",
    "- submit_final_answer(answer): submit your final answer; the task ends after this cell.",
    "- task: the text of the task, as a string.",
    ...tools.filter((t) => TOOL_DOCS[t]).map((t) => `- ${TOOL_DOCS[t]}`),
    "Write exactly one <code> block per turn. Keep the final answer short.",
  ];
  return lines.join("\n");
}

export function renderNotepad(n: Notepad | null): string {
  if (!n || (n.facts.length === 0 && n.todo.length === 0 && !n.draft)) return "";
  const parts = ["Notepad:"];
  if (n.facts.length) parts.push("facts:", ...n.facts.map((f) => `- ${f}`));
  if (n.todo.length) parts.push("to-do:", ...n.todo.map((t, i) => `${i}. ${t}`));
  if (n.draft) parts.push(`draft: ${n.draft}`);
  return parts.join("\n");
}

/**
 * Cuts text to `budget` characters keeping head and tail, with a note saying how much was cut.
 * Neither cut splits a surrogate pair (half of one is not valid UTF-8 and the engine refuses it).
 */
export function truncate(text: string, budget: number): { text: string; cut: number } {
  if (text.length <= budget) return { text, cut: 0 };
  const head = cutText(text, Math.floor(budget * 0.7));
  let tail = text.slice(text.length - (budget - Math.floor(budget * 0.7)));
  if (/^[\uDC00-\uDFFF]/.test(tail)) tail = tail.slice(1);
  const cut = text.length - head.length - tail.length;
  return { text: `${head}\n[... ${cut} characters cut ...]\n${tail}`, cut };
}

/** What the model sees after a cell: output, value, error, or what happened to the kernel. */
export function renderObservation(r: CellResult, budget: number): { text: string; cut: number } {
  const parts: string[] = [];
  if (r.stdout) parts.push(r.stdout.replace(/\n$/, ""));
  if (r.stderr) parts.push(`[stderr]\n${r.stderr.replace(/\n$/, "")}`);
  if (r.result !== null && r.result !== undefined) parts.push(`Out: ${r.result}`);
  if (r.error) parts.push(r.error.replace(/\n$/, ""));
  if (r.outcome === "killed" || (r.outcome === "timeout" && !r.kernelAlive))
    parts.push(`[${r.detail}; the kernel was restarted and earlier variables are gone]`);
  else if (r.outcome === "timeout" && !r.error) parts.push(`[${r.detail}]`);
  if (r.truncatedBytes > 0) parts.push(`[${r.truncatedBytes} characters of output were cut]`);
  if (r.finalAnswer !== null) parts.push(`[final answer submitted: ${r.finalAnswer}]`);
  const text = parts.length ? parts.join("\n") : "[no output]";
  const t = truncate(text, budget);
  return { text: wellFormed(t.text), cut: t.cut + r.truncatedBytes };
}

/** Rough token count for text the engine has not tokenized yet (corrected by /tokenize). */
export const estimateTokens = (text: string): number => Math.ceil(text.length / 3);

/**
 * Index of the first cell to keep so the notebook fits the budget: the newest cells are kept,
 * older ones dropped. `fixed` is the cost of system prompt, task and notepad.
 */
export function firstKeptCell(cells: readonly Pick<Cell, "tokens">[], fixed: number, budget: number): number {
  let total = fixed;
  let first = cells.length;
  for (let i = cells.length - 1; i >= 0; i--) {
    if (total + cells[i]!.tokens > budget) break;
    total += cells[i]!.tokens;
    first = i;
  }
  return first;
}

export function buildMessages(opts: {
  tools: string[];
  task: string;
  cells: readonly Cell[];
  firstKept: number;
  notepad: Notepad | null;
}): ChatMessage[] {
  const msgs: ChatMessage[] = [
    { role: "system", content: systemPrompt(opts.tools) },
    { role: "user", content: opts.task },
  ];
  if (opts.firstKept > 0) {
    msgs.push({
      role: "user",
      content: `[${opts.firstKept} earlier cell(s) were dropped to fit the context; the notepad keeps your notes]`,
    });
  }
  const kept = opts.cells.slice(opts.firstKept);
  kept.forEach((c, i) => {
    msgs.push({ role: "assistant", content: c.response });
    const notepad = i === kept.length - 1 ? renderNotepad(opts.notepad) : "";
    msgs.push({ role: "user", content: `Observation:\n${c.observation}${notepad ? "\n\n" + notepad : ""}` });
  });
  if (kept.length === 0 && opts.notepad) {
    const np = renderNotepad(opts.notepad);
    if (np) msgs.push({ role: "user", content: np });
  }
  return mergeAdjacentUsers(msgs);
}

/**
 * Chat templates expect alternating roles: consecutive user messages are joined. Every message
 * leaves well-formed (no lone surrogate from any source), so the engine always gets valid UTF-8.
 */
function mergeAdjacentUsers(msgs: ChatMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const m of msgs) {
    const last = out[out.length - 1];
    if (last && last.role === "user" && m.role === "user") last.content += "\n\n" + m.content;
    else out.push({ ...m });
  }
  return out.map((m) => ({ ...m, content: wellFormed(m.content) }));
}
