"""Start failures classified: configuration and input exit 2 (not retried), crashes 1 (retried)."""
import errno
import unittest

import helpers  # noqa: F401 - puts the learner on sys.path (this module may run alone)
from learner.__main__ import EXIT_CONFIG, EXIT_FAILURE, start_failure_code

CASES = [
    ("bad warm-start line", ValueError("demos.jsonl:2: messages: no assistant message"), EXIT_CONFIG),
    ("missing file", FileNotFoundError(2, "No such file or directory", "/x/demos.jsonl"), EXIT_CONFIG),
    ("transformers missing", ImportError("model 'gpt2' needs the transformers package"), EXIT_CONFIG),
    ("no GPU here", RuntimeError("Found no NVIDIA driver on your system"), EXIT_CONFIG),
    ("torch without CUDA", AssertionError("Torch not compiled with CUDA enabled"), EXIT_CONFIG),
    ("unknown model id", OSError("nope is not a valid model identifier listed on 'https://huggingface.co/models'"),
     EXIT_CONFIG),
    ("port in use", OSError(errno.EADDRINUSE, "Address already in use"), EXIT_FAILURE),
    ("out of memory", MemoryError(), EXIT_FAILURE),
    ("anything else", RuntimeError("boom"), EXIT_FAILURE),
]


class ExitCodeTest(unittest.TestCase):
    def test_start_failures_are_classified(self):
        for name, err, want in CASES:
            with self.subTest(name):
                self.assertEqual(start_failure_code(err), want)


if __name__ == "__main__":
    unittest.main()
