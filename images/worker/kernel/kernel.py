"""The NB-Agent kernel: a small persistent Python REPL that runs inside the sandbox.

It executes code strings in one namespace and talks to the worker over a framed channel on
its original stdin/stdout (4-byte big-endian length + UTF-8 JSON per frame). Agent code never
sees the channel as sys.stdout: its prints are captured (capped) and fd-level output of child
processes goes to an unlinked file on a tmpfs of its own (/run/l0), read back after each cell.
Tools that need the outside world (search, read) are proxied to the worker as `tool` frames; the
kernel holds no credentials.

What this process cannot guarantee, being a REPL in the same interpreter as agent code: agent
code can read this module's state (the request's nonce included), write to the channel, or
replace the loop below. So nothing it reports is trusted beyond the agent's own episode: the
worker decides deadlines by its own clock, accepts one result per request carrying that
request's nonce, and kills the kernel for anything else (images/worker/README.md).

Limits are applied here before `ready` (rlimits, both soft and hard, so agent code cannot raise
them); the bwrap jail around this process is built by the worker (images/worker/sandbox/).
This file is the only worker file bound into the sandbox (read-only).
"""

import ast
import json
import os
import resource
import signal
import struct
import sys

MAX_IN_FRAME = 16 * 1024 * 1024
HEADER = struct.Struct(">I")


class CellTimeout(BaseException):
    """Raised in agent code at the cell's wall-clock deadline; BaseException so that a bare
    `except Exception` in agent code does not swallow it."""


class Channel:
    def __init__(self, fd_in, fd_out):
        self.fd_in = fd_in
        self.fd_out = fd_out

    def _read_exact(self, n):
        chunks = []
        while n > 0:
            b = os.read(self.fd_in, min(n, 1 << 20))
            if not b:
                raise EOFError("channel closed")
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    def recv(self):
        (n,) = HEADER.unpack(self._read_exact(4))
        if n > MAX_IN_FRAME:
            raise ValueError("frame too large")
        return json.loads(self._read_exact(n).decode("utf-8"))

    def send(self, obj):
        data = json.dumps(obj, ensure_ascii=False, default=str).encode("utf-8", "replace")
        buf = HEADER.pack(len(data)) + data
        while buf:
            k = os.write(self.fd_out, buf)
            buf = buf[k:]


class CappedWriter:
    """A text stream that keeps the first `budget` characters and counts the rest."""

    def __init__(self, budget):
        self.budget = budget
        self.parts = []
        self.kept = 0
        self.dropped = 0

    def write(self, s):
        if not isinstance(s, str):
            s = str(s)
        room = self.budget - self.kept
        if room > 0:
            piece = s[:room]
            self.parts.append(piece)
            self.kept += len(piece)
            self.dropped += len(s) - len(piece)
        else:
            self.dropped += len(s)
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return False

    def value(self):
        return "".join(self.parts)


class Notepad:
    """NB-Agent's notepad: facts, a to-do list and a draft answer. It survives context trimming
    because the worker renders it into every prompt (it arrives with each cell result)."""

    LIMIT = 4000

    def __init__(self):
        self.facts = []
        self.todo = []
        self.draft = ""

    def add_fact(self, text):
        self.facts.append(str(text)[: self.LIMIT])
        return "noted"

    def add_todo(self, text):
        self.todo.append(str(text)[: self.LIMIT])
        return "noted"

    def done(self, index):
        del self.todo[int(index)]
        return "done"

    def set_draft(self, text):
        self.draft = str(text)[: self.LIMIT]
        return "noted"

    def state(self):
        return {"facts": self.facts[-50:], "todo": self.todo[-50:], "draft": self.draft}

    def load(self, st):
        self.facts = [str(x) for x in st.get("facts", [])]
        self.todo = [str(x) for x in st.get("todo", [])]
        self.draft = str(st.get("draft", ""))

    def __repr__(self):
        return "facts: %r\ntodo: %r\ndraft: %r" % (self.facts, self.todo, self.draft)


def set_limits(args):
    # Soft == hard: an unprivileged process cannot raise a hard limit again.
    pairs = {
        "--as": resource.RLIMIT_AS,
        "--cpu": resource.RLIMIT_CPU,
        "--fsize": resource.RLIMIT_FSIZE,
        "--nofile": resource.RLIMIT_NOFILE,
        "--nproc": resource.RLIMIT_NPROC,
    }
    it = iter(args)
    for flag in it:
        value = int(next(it))
        if flag not in pairs:
            raise ValueError("unknown limit flag " + flag)
        resource.setrlimit(pairs[flag], (value, value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Kernel:
    def __init__(self, chan, capture_fd):
        self.chan = chan
        self.capture_fd = capture_fd
        self.ns = {"__name__": "__main__"}
        self.notepad = Notepad()
        self.final = None
        self.tool_seq = 0
        self.budget = 8192
        # While a tool call waits on the channel the deadline must not cut a frame in half (the
        # channel would be out of step): the alarm is noted and raised once the reply is read.
        self.in_channel = False
        self.alarm_pending = False
        self.alarm_live = False

    def _on_alarm(self, signum, frame):
        # A deadline that arrives once the cell body is over (its timer cancelled, the handler run
        # late) is no longer the cell's: raising it in the error handling would kill the kernel.
        if not self.alarm_live:
            return
        if self.in_channel:
            self.alarm_pending = True
            return
        raise CellTimeout()

    def install_tools(self, names):
        ns = self.ns
        ns["submit_final_answer"] = self.submit_final_answer
        if "notepad" in names:
            ns["notepad"] = self.notepad
        for name in ("search", "read"):
            if name in names:
                ns[name] = self._proxy(name)

    def submit_final_answer(self, answer):
        """Ends the episode with `answer` after this cell."""
        self.final = str(answer)[:10000]
        return "final answer recorded"

    def _proxy(self, name):
        def tool(query):
            self.tool_seq += 1
            tid = self.tool_seq
            self.in_channel = True
            try:
                self.chan.send({"t": "tool", "id": tid, "name": name, "arg": str(query)[:4000]})
                while True:
                    msg = self.chan.recv()
                    if msg.get("t") == "tool_result" and msg.get("id") == tid:
                        break
            finally:
                self.in_channel = False
            if self.alarm_pending:
                self.alarm_pending = False
                raise CellTimeout()
            if not msg.get("ok"):
                raise RuntimeError("%s failed: %s" % (name, msg.get("error", "unknown error")))
            return msg.get("value", "")

        tool.__name__ = name
        tool.__doc__ = "search(query) -> ranked results" if name == "search" else "read(id_or_url) -> text"
        return tool

    def _drain_fd_output(self):
        os.lseek(self.capture_fd, 0, os.SEEK_SET)
        data = os.read(self.capture_fd, self.budget + 1)
        size = os.fstat(self.capture_fd).st_size
        # A full capture file system means writes of child processes failed: say so.
        full = os.fstatvfs(self.capture_fd).f_bavail == 0
        os.ftruncate(self.capture_fd, 0)
        text = data[: self.budget].decode("utf-8", "replace")
        if full:
            text += "\n[output of child processes was lost: the space that captures it is full]\n"
        return text, max(0, size - min(len(data), self.budget))

    def execute(self, msg):
        code = msg.get("code", "")
        timeout = float(msg.get("timeout", 10))
        out, err = CappedWriter(self.budget), CappedWriter(self.budget)
        sys.stdout, sys.stderr = out, err
        reply = {"t": "result", "id": msg.get("id"), "ok": True, "result": None, "error": None}
        reply["timedOut"] = False

        self.alarm_pending = False
        self.alarm_live = True
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            try:
                tree = ast.parse(code, "<cell>", "exec")
                last = None
                if tree.body and isinstance(tree.body[-1], ast.Expr):
                    last = ast.Expression(tree.body.pop().value)
                exec(compile(tree, "<cell>", "exec"), self.ns)
                if last is not None:
                    value = eval(compile(last, "<cell>", "eval"), self.ns)
                    if value is not None:
                        reply["result"] = repr(value)[: self.budget]
            finally:
                # The deadline ends with the body, before any error is handled: an alarm raised
                # here is still caught as the cell's timeout below, one after it is ignored.
                signal.setitimer(signal.ITIMER_REAL, 0)
                self.alarm_live = False
        except CellTimeout:
            reply["ok"] = False
            reply["timedOut"] = True
            reply["error"] = "CellTimeout: the cell passed its %g s deadline and was interrupted" % timeout
        except BaseException as e:  # noqa: BLE001 - agent code may raise anything, SystemExit too
            reply["ok"] = False
            import traceback  # only on error: keeps it off the start-up path

            tb = traceback.format_exception(type(e), e, e.__traceback__)
            # Drop the kernel's own frames: the agent only needs its cell's.
            tb = [line for line in tb if 'kernel.py"' not in line]
            reply["error"] = "".join(tb)[-self.budget :]
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        try:
            fd_text, fd_dropped = self._drain_fd_output()
        except OSError:
            fd_text, fd_dropped = "", 0
        reply["stdout"] = out.value() + fd_text
        reply["stderr"] = err.value()
        reply["truncated"] = out.dropped + err.dropped + fd_dropped
        reply["final"] = self.final
        reply["notepad"] = self.notepad.state()
        return reply

    def serve(self):
        self.chan.send({"t": "ready", "pid": os.getpid()})
        while True:
            try:
                msg = self.chan.recv()
            except EOFError:
                return
            kind = msg.get("t")
            if kind == "init":
                self.budget = int(msg.get("budget", self.budget))
                self.install_tools(msg.get("tools", []))
                self.ns["task"] = str(msg.get("task", ""))
                if msg.get("notepad"):
                    self.notepad.load(msg["notepad"])
            elif kind == "exec":
                self.chan.send(self.execute(msg))


# The capture's own tmpfs in the sandbox (bwrap.ts OUTPUT_DIR_IN_SANDBOX); TMPDIR outside one.
OUTPUT_DIR = "/run/l0"


def main():
    set_limits(sys.argv[1:])
    # Only the channel and stderr cross into agent code: whatever else the kernel inherited (the
    # seccomp filter's descriptor, anything its starter leaked) is closed before any cell runs.
    os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    # Writes past RLIMIT_FSIZE fail with EFBIG instead of killing the kernel.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    chan = Channel(os.dup(0), os.dup(1))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # fd 1 and 2 of agent code and its children: an unlinked file the kernel reads back.
    out_dir = OUTPUT_DIR if os.path.isdir(OUTPUT_DIR) else os.environ.get("TMPDIR", "/tmp")
    path = "%s/.l0-output-%d" % (out_dir, os.getpid())
    cap = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    os.unlink(path)
    os.dup2(cap, 1)
    os.dup2(cap, 2)
    sys.stdin = open(os.devnull)
    Kernel(chan, cap).serve()


if __name__ == "__main__":
    main()
