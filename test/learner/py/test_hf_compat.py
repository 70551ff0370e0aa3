"""The built-in models' exports read by the real `transformers`, where it is installed (the GPU
image; skipped on Debian's CPU image, which has none): the tokenizer files give our ids and chat
rendering, and a tiny-qwen2 export loads as Qwen2ForCausalLM with our logits. Imports no torch
until the model test, so the tokenizer half also runs under a Python that has transformers but
no torch. Both halves passed on CPU with transformers 5.17.0 and torch 2.13.0+cpu in temporary
pip targets (learner README, "tiny-qwen2"); the Debian CPU image skips them."""
import importlib.util
import json
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "images" / "trainer"))

from learner.tokenizer import ByteTokenizer  # noqa: E402
from learner.tokenizer_files import write_tokenizer_files  # noqa: E402

HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
TOK = ByteTokenizer()
TEXTS = ["hello", " two  spaces\n\ttab\r\n", "héllo wörld ß", "日本語", "emoji 🤖 👍🏽 👨‍👩‍👧", "nul\u0000 del\u007f",
         "a<|user|>b<|x", "<|bos|><|end|><|pad|>", "".join(chr(c) for c in range(0x20, 0x300))]
CHATS = [[{"role": "user", "content": "What is 2+2?"}],
         [{"role": "system", "content": "Réponds 🏛️"}, {"role": "user", "content": "q\n"},
          {"role": "assistant", "content": "a"}, {"role": "user", "content": ""}]]


def torch_2() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return int(torch.__version__.split(".")[0]) >= 2


@unittest.skipUnless(HAS_TRANSFORMERS, "transformers is not installed here (the GPU image has it)")
class TransformersReadsOurFilesTest(unittest.TestCase):
    def test_the_tokenizer_gives_our_ids_and_our_chat_rendering(self):
        from transformers import AutoTokenizer

        with tempfile.TemporaryDirectory() as d:
            write_tokenizer_files(TOK, Path(d), 1024)
            tok = AutoTokenizer.from_pretrained(d)
        for text in TEXTS:
            self.assertEqual(tok.encode(text, add_special_tokens=False), TOK.encode(text, parse_special=True), text)
            self.assertEqual(tok(text)["input_ids"], TOK.encode(text, parse_special=True), text)
        for messages in CHATS:
            for gen in (True, False):
                ids = tok.apply_chat_template(messages, add_generation_prompt=gen, tokenize=True, return_dict=False)
                self.assertEqual(list(ids), TOK.render_chat(messages, gen))
        self.assertEqual((tok.bos_token_id, tok.eos_token_id, tok.pad_token_id), (TOK.bos_id, TOK.eos_id, TOK.pad_id))

    @unittest.skipUnless(torch_2(), "transformers' models need torch >= 2")
    def test_a_tiny_qwen2_export_loads_as_qwen2_with_our_logits(self):
        import torch
        from transformers import AutoModelForCausalLM

        from learner import export
        from learner.qwen2 import TinyQwen2, tiny_qwen2_config

        torch.manual_seed(0)
        ours = TinyQwen2(tiny_qwen2_config(TOK.vocab_size, 64, 2, 4, 64)).eval()
        with torch.no_grad():
            for p in ours.parameters():  # away from the init (norms all ones, biases zero)
                p.add_(torch.randn_like(p) * 0.05)
        ids = torch.tensor([TOK.render_chat([{"role": "user", "content": "what is two plus two?"}])])
        with tempfile.TemporaryDirectory() as d:
            path, _ = export.export(ours, 1, d, "tiny-qwen2")
            self.assertEqual(json.loads((path / "config.json").read_text())["model_type"], "qwen2")
            hf, info = AutoModelForCausalLM.from_pretrained(str(path), output_loading_info=True,
                                                            attn_implementation="eager")
        self.assertEqual(type(hf).__name__, "Qwen2ForCausalLM")
        self.assertEqual({k: v for k, v in info.items() if v}, {})  # nothing missing or unexpected
        with torch.no_grad():
            want = ours(ids)[0]
            got = hf.float().eval()(input_ids=ids).logits
        self.assertTrue(torch.allclose(got, want, atol=1e-4), (got - want).abs().max())


if __name__ == "__main__":
    unittest.main()
