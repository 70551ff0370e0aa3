"""Directories written whole (atomic_dir.py, both checkpoint layouts): a finished block replaces
the target, a failing one leaves the old target as it was, and no temporary sibling stays."""
import os
import tempfile
import unittest
from pathlib import Path

import helpers  # noqa: F401 - puts the learner on sys.path
from learner import atomic_dir


class AtomicDirTest(unittest.TestCase):
    def setUp(self):
        self._d = tempfile.TemporaryDirectory()
        self.root = Path(self._d.name)
        self.target = self.root / "ckpt"

    def tearDown(self):
        self._d.cleanup()

    def write(self, text: str, fail: bool = False) -> None:
        with atomic_dir.replacing(self.target) as tmp:
            self.assertFalse(tmp.samefile(self.root))
            (tmp / "a").write_text(text)
            if fail:
                raise RuntimeError("disk full")

    def test_publishes_and_replaces_leaving_no_sibling(self):
        self.write("one")
        self.write("two")
        self.assertEqual((self.target / "a").read_text(), "two")
        self.assertEqual(os.listdir(self.root), ["ckpt"])

    def test_a_failing_write_keeps_the_old_directory(self):
        self.write("one")
        with self.assertRaises(RuntimeError):
            self.write("two", fail=True)
        self.assertEqual((self.target / "a").read_text(), "one")
        self.assertEqual(os.listdir(self.root), ["ckpt"])

    def test_a_failing_first_write_leaves_nothing(self):
        with self.assertRaises(RuntimeError):
            self.write("one", fail=True)
        self.assertEqual(os.listdir(self.root), [])

    def test_a_failing_rename_puts_the_old_directory_back(self):
        self.write("one")
        real = os.rename
        calls = []

        def flaky(src, dst):
            calls.append((src, dst))
            if len(calls) == 2:  # the new one into place
                raise OSError("EIO")
            return real(src, dst)

        atomic_dir.os.rename = flaky
        try:
            with self.assertRaises(OSError):
                self.write("two")
        finally:
            atomic_dir.os.rename = real
        self.assertEqual((self.target / "a").read_text(), "one")
        self.assertEqual(os.listdir(self.root), ["ckpt"])

    def test_recover_restores_a_directory_left_aside_by_a_crash(self):
        self.write("one")
        os.rename(self.target, self.root / ".ckpt.old-123")  # died between the two renames
        atomic_dir.recover(self.target)
        self.assertEqual((self.target / "a").read_text(), "one")
        atomic_dir.recover(self.target)  # nothing to do now
        self.assertEqual(sorted(os.listdir(self.root)), ["ckpt"])

    def test_creates_missing_parents(self):
        self.target = self.root / "runs" / "qa" / "ckpt"
        self.write("one")
        self.assertEqual((self.target / "a").read_text(), "one")


if __name__ == "__main__":
    unittest.main()
