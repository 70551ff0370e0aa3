"""Directories written whole: filled in a temporary sibling, every file and the directory
fsynced, then renamed into place (an older one moved aside first and removed after), so a reader
sees the old directory or the new one, never a half-written one. The checkpoint layouts
(checkpoint.py, checkpoint_dcp.py) both write through here. Not safe against two writers of the
same target at once (the learner has one writer per checkpoint directory)."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def temp_sibling(target: Path) -> Path:
    """A fresh temporary directory next to `target` (same file system, so the rename is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, target: Path) -> None:
    """Makes `tmp`'s contents durable and renames it to `target`, replacing what was there."""
    for f in tmp.iterdir():
        fsync_path(f)
    fsync_path(tmp)
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:  # put the old one back: a failed replace changes nothing
            os.rename(old, target)
        raise
    fsync_path(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover(target: Path) -> None:
    """Before reading `target`: if a process died between moving the old directory aside and
    renaming the new one in (the one window where `target` is missing), the old one (complete)
    goes back in place. Nothing to do otherwise."""
    if target.exists():
        return
    aside = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if aside:
        os.rename(aside[-1], target)


def discard(tmp: Path) -> None:
    shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """Yields a temporary directory to fill; published as `target` when the block ends normally,
    removed when it raises (the old `target` stays)."""
    tmp = temp_sibling(target)
    try:
        yield tmp
        publish(tmp, target)
    except BaseException:
        discard(tmp)
        raise
