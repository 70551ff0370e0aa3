"""The tiny tokenizer's Hugging Face files as the exporter writes them. Hugging Face's own
implementations read them in test/learner/hf-tokenizer.test.ts; here: the byte table, and that
every tiny export carries the files with our ids."""
import json
import tempfile
import unittest
from pathlib import Path

from helpers import TOK, tiny_model

from learner import export
from learner.tokenizer_files import bytes_to_unicode, tokenizer_config, tokenizer_json


class ByteTableTest(unittest.TestCase):
    def test_gpt2_byte_characters(self):
        table = bytes_to_unicode()
        self.assertEqual(len(set(table.values())), 256)
        # Values every GPT-2-style vocabulary shows (space is "Ġ", newline "Ċ").
        for b, ch in [(0x00, "\u0100"), (0x0A, "\u010a"), (0x20, "\u0120"), (0x21, "!"), (0x7E, "~"),
                      (0x7F, "\u0121"), (0xA0, "\u0142"), (0xA1, "\u00a1"), (0xAD, "\u0143"), (0xFF, "\u00ff")]:
            with self.subTest(byte=b):
                self.assertEqual(table[b], ch)


class TokenizerFilesTest(unittest.TestCase):
    def test_ids_are_ours(self):
        tj = tokenizer_json(TOK)
        self.assertEqual(sorted(tj["model"]["vocab"].values()), list(range(256)))
        self.assertEqual(tj["model"]["merges"], [])
        self.assertEqual({t["content"]: t["id"] for t in tj["added_tokens"]}, TOK.special)
        self.assertTrue(all(t["special"] and not t["normalized"] for t in tj["added_tokens"]))
        cfg = tokenizer_config(TOK, 64)
        self.assertEqual((cfg["bos_token"], cfg["eos_token"], cfg["pad_token"]), ("<|bos|>", "<|end|>", "<|pad|>"))
        self.assertEqual({int(k): v["content"] for k, v in cfg["added_tokens_decoder"].items()}, TOK.special_of)

    def test_every_tiny_export_carries_the_tokenizer_and_generation_config(self):
        with tempfile.TemporaryDirectory() as d:
            path, _ = export.export(tiny_model(), 3, d, "tiny")
            files = {p.name for p in Path(path).iterdir()}
            self.assertLessEqual({"tokenizer.json", "tokenizer_config.json", "generation_config.json"}, files)
            cfg = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
            self.assertEqual(cfg["model_max_length"], 64)  # the model's block size
            self.assertIn("<|end|>", cfg["chat_template"])
            gen = json.loads((path / "generation_config.json").read_text())
            self.assertEqual(gen, {"bos_token_id": TOK.bos_id, "eos_token_id": TOK.eos_id, "pad_token_id": TOK.pad_id})
            tj = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
            self.assertEqual(tj, tokenizer_json(TOK))


if __name__ == "__main__":
    unittest.main()
