"""JSON-lines logger shaped like the TypeScript side's (lib/log.ts): a fixed message, context
in fields, one object per line on stderr."""
from __future__ import annotations

import json
import sys
import threading
from datetime import datetime, timezone

LEVELS = {"error": 0, "warn": 1, "info": 2, "debug": 3}


class Logger:
    def __init__(self, component: str = "learner", level: str = "info", stream=None, **fields) -> None:
        self.stream = stream or sys.stderr
        self.level = LEVELS.get(level, -1 if level == "none" else 2)
        self.fields = {"component": component, **fields}
        self._lock = threading.Lock()

    def child(self, **fields) -> "Logger":
        c = Logger.__new__(Logger)
        c.stream, c.level, c._lock = self.stream, self.level, self._lock
        c.fields = {**self.fields, **fields}
        return c

    def _log(self, level: str, message: str, fields: dict, force: bool = False) -> None:
        if LEVELS[level] > self.level and not force:
            return
        ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        rec = {**self.fields, **fields, "level": level, "message": message, "timestamp": ts}
        line = json.dumps(rec, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def error(self, message: str, **fields) -> None:
        self._log("error", message, fields)

    def warn(self, message: str, **fields) -> None:
        self._log("warn", message, fields)

    def info(self, message: str, **fields) -> None:
        self._log("info", message, fields)

    def debug(self, message: str, **fields) -> None:
        self._log("debug", message, fields)

    def always(self, message: str, **fields) -> None:
        """An info line printed at every level (the readiness line launchers wait for)."""
        self._log("info", message, fields, force=True)


def silent() -> Logger:
    return Logger(level="none")
