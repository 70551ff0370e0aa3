"""Our tokenizer's answers for test/learner/hf-tokenizer.test.ts, which checks them against
Hugging Face's own JS tokenizer and Jinja engine. Reads {"dir", "texts", "conversations",
"decode"} as JSON on stdin, writes the tiny tokenizer files into `dir`, prints the answers."""
import json
import sys
from pathlib import Path

import helpers  # noqa: F401 - import paths

from learner.tokenizer import ByteTokenizer
from learner.tokenizer_files import write_tokenizer_files

TOK = ByteTokenizer()


def as_text(ids):
    """Rendered ids as the template's text: special tokens by name, bytes decoded."""
    out, run = [], bytearray()
    for t in ids:
        if t < 256:
            run.append(t)
            continue
        out.append(run.decode("utf-8"))
        run = bytearray()
        out.append(TOK.special_of[t])
    out.append(run.decode("utf-8"))
    return "".join(out)


def main() -> None:
    req = json.load(sys.stdin)
    write_tokenizer_files(TOK, Path(req["dir"]), 1024)
    chats = [TOK.render_chat(c["messages"], c["add_generation_prompt"]) for c in req["conversations"]]
    json.dump({
        "encode": [TOK.encode(t, parse_special=True) for t in req["texts"]],
        "chat": [{"ids": ids, "text": as_text(ids)} for ids in chats],
        "decode": [TOK.decode(ids) for ids in req["decode"]],
    }, sys.stdout)


if __name__ == "__main__":
    main()
