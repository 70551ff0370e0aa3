// The NB-Agent turn format: `<think>…</think>` then exactly one `<code>…</code>`. Pure parsing;
// a malformed turn is a result with a message the model sees, never an exception.

export type ParsedTurn = { ok: true; think: string; code: string } | { ok: false; error: string };

export const CODE_CLOSE = "</code>";

const count = (s: string, sub: string): number => s.split(sub).length - 1;

/**
 * Parses one model turn. `stoppedAtCodeClose` is true when the engine stopped on the `</code>`
 * stop string (which engines leave out of the text), so an open `<code>` at the end is closed.
 */
export function parseTurn(text: string, stoppedAtCodeClose = false): ParsedTurn {
  let t = text;
  if (stoppedAtCodeClose && count(t, "<code>") > count(t, CODE_CLOSE)) t += CODE_CLOSE;
  const opens = count(t, "<code>");
  const closes = count(t, CODE_CLOSE);
  if (opens === 0)
    return {
      ok: false,
      error: "no <code> block: write your reasoning in <think>…</think>, then one <code>…</code>",
    };
  if (opens > 1 || closes > 1)
    return { ok: false, error: "more than one <code> block: write exactly one code cell per turn" };
  if (closes === 0) return { ok: false, error: "unclosed <code> tag: end the cell with </code>" };
  const thinkOpen = t.indexOf("<think>");
  const thinkClose = t.indexOf("</think>");
  const codeOpen = t.indexOf("<code>");
  const codeClose = t.indexOf(CODE_CLOSE);
  if (codeClose < codeOpen) return { ok: false, error: "</code> before <code>" };
  if (thinkOpen < 0 || thinkClose < 0)
    return { ok: false, error: "missing <think>…</think>: think first, then write one <code>…</code>" };
  if (count(t, "<think>") > 1 || count(t, "</think>") > 1)
    return { ok: false, error: "more than one <think> block" };
  if (!(thinkOpen < thinkClose && thinkClose < codeOpen))
    return { ok: false, error: "<think>…</think> must come before <code>" };
  const think = t.slice(thinkOpen + 7, thinkClose).trim();
  const code = stripFences(t.slice(codeOpen + 6, codeClose));
  if (!code.trim()) return { ok: false, error: "empty <code> block" };
  return { ok: true, think, code };
}

/** Models often wrap the cell in a Markdown fence inside the tags; the fence is not Python. */
export function stripFences(code: string): string {
  const m = /^\s*```[a-zA-Z0-9_-]*\n([\s\S]*?)\n?```\s*$/.exec(code);
  return (m ? m[1]! : code).replace(/^\n+|\s+$/g, "");
}
