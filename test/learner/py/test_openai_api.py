"""The engine's request layer without a server: every parameter is honoured, refused naming it,
or accepted with no effect as docs/engine-api.md says; max_completion_tokens; logprob limits."""
import re
import unittest

from helpers import ROOT, TOK

from learner.openai_api import HONOURED, MAX_LOGPROBS, NO_EFFECT, REFUSED, RequestError, parse_request

BLOCK = 64
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
TEXT = {"prompt": [1, 2, 3]}


def parse(body, chat):
    return parse_request({**(CHAT if chat else TEXT), **body}, TOK, BLOCK, chat)


def refusal(body, chat):
    try:
        parse(body, chat)
    except RequestError as e:
        return e
    raise AssertionError(f"{body} was accepted")


class ParametersTest(unittest.TestCase):
    def test_what_the_engine_cannot_do_is_refused_naming_the_parameter(self):
        table = [  # (endpoint is chat, extra body, parameter named, error code)
            (False, {"echo": True}, "echo", "unsupported_parameter"),
            (True, {"echo": True}, "echo", "unsupported_parameter"),
            (False, {"logprobs": MAX_LOGPROBS + 1}, "logprobs", "invalid_value"),
            (True, {"logprobs": True, "top_logprobs": MAX_LOGPROBS + 1}, "top_logprobs", "invalid_value"),
            (True, {"top_logprobs": 2}, "top_logprobs", "invalid_value"),
            (True, {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "unsupported_parameter"),
            (True, {"tool_choice": "auto"}, "tool_choice", "unsupported_parameter"),
            (True, {"response_format": {"type": "json_object"}}, "response_format", "unsupported_parameter"),
            (False, {"n": 2}, "n", "unsupported_value"),
            (True, {"n": 2}, "n", "unsupported_value"),
            (False, {"best_of": 3}, "best_of", "unsupported_parameter"),
            (False, {"suffix": "x"}, "suffix", "unsupported_parameter"),
            (True, {"presence_penalty": 0.5}, "presence_penalty", "unsupported_parameter"),
            (True, {"logit_bias": {"97": 5}}, "logit_bias", "unsupported_parameter"),
            (False, {"top_k": 5}, "top_k", "unsupported_parameter"),
            (False, {"return_tokens_as_token_ids": False}, "return_tokens_as_token_ids", "unsupported_parameter"),
            (True, {"add_generation_prompt": False}, "add_generation_prompt", "unsupported_parameter"),
            (False, {"guided_json": {}}, "guided_json", "unknown_parameter"),  # removed from vLLM 0.12
            (True, {"max_tokns": 5}, "max_tokns", "unknown_parameter"),
            (False, {"max_completion_tokens": 5}, "max_completion_tokens", "unknown_parameter"),  # chat only
            (False, {"temperature": "hot"}, "temperature", "invalid_type"),
            (True, {"stream": "yes"}, "stream", "invalid_type"),
            (False, {"user": 7}, "user", "invalid_type"),
            (False, {"echo": 1}, "echo", "unsupported_parameter"),  # 1 is not false
            (True, {"stream_options": {"include_usage": True}}, "stream_options", "invalid_value"),
            (True, {"stream": True, "stream_options": {"usage": True}}, "stream_options.usage", "unknown_parameter"),
            (True, {"max_tokens": 4, "max_completion_tokens": 5}, "max_tokens", "invalid_value"),
        ]
        for chat, body, param, code in table:
            with self.subTest(param=param, chat=chat):
                e = refusal(body, chat)
                self.assertEqual((e.status, e.param, e.code), (400, param, code))
                self.assertTrue(str(e).startswith(param + ":"), str(e))
                self.assertEqual(e.body()["error"]["type"], "invalid_request_error")

    def test_values_that_ask_for_nothing_are_accepted(self):
        # Clients (the openai SDK's users, LangChain...) often send the defaults explicitly.
        neutral = {"echo": False, "best_of": 1, "suffix": "", "logit_bias": {}, "presence_penalty": 0,
                   "frequency_penalty": 0.0, "repetition_penalty": 1.0, "top_k": -1, "min_p": 0,
                   "min_tokens": 0, "ignore_eos": False, "stop_token_ids": [], "include_stop_str_in_output": False,
                   "skip_special_tokens": True, "return_tokens_as_token_ids": True, "tools": [],
                   "tool_choice": "none", "response_format": {"type": "text"}, "add_generation_prompt": True,
                   "store": False, "n": 1, "user": "u1", "metadata": {"a": "b"}, "return_token_ids": False,
                   "parallel_tool_calls": True, "stream": False, "prompt_logprobs": None}
        for key, value in neutral.items():
            with self.subTest(key=key):
                parse({key: value}, chat=True)

    def test_every_parameter_is_in_the_docs(self):
        doc = (ROOT / "docs" / "engine-api.md").read_text(encoding="utf-8")
        named = set(re.findall(r"`([a-z_]+)`", doc))
        tables = set(REFUSED) | set(NO_EFFECT) | set().union(*HONOURED.values())
        self.assertEqual(tables - named, set())


class SamplingFieldsTest(unittest.TestCase):
    def test_max_completion_tokens_is_honoured_like_max_tokens(self):
        self.assertEqual(parse({"max_completion_tokens": 5}, chat=True).gen.max_tokens, 5)
        self.assertEqual(parse({"max_tokens": 5}, chat=True).gen.max_tokens, 5)
        self.assertEqual(parse({"max_tokens": 5, "max_completion_tokens": 5}, chat=True).gen.max_tokens, 5)

    def test_defaults_are_vllms_and_capped_to_the_context(self):
        chat = parse({}, chat=True)
        self.assertEqual(chat.gen.max_tokens, BLOCK - len(chat.prompt))  # the rest of the context
        self.assertEqual(parse({}, chat=False).gen.max_tokens, 16)
        self.assertEqual(parse({"max_tokens": 10_000}, chat=False).gen.max_tokens, BLOCK - 3)

    def test_logprobs_ask_for_top_tokens(self):
        self.assertEqual(parse({"logprobs": 3}, chat=False).gen.top_logprobs, 3)
        r = parse({"logprobs": True, "top_logprobs": 4}, chat=True)
        self.assertEqual((r.logprobs, r.gen.top_logprobs), (4, 4))
        self.assertIsNone(parse({"logprobs": False}, chat=True).logprobs)
        self.assertEqual(parse({"logprobs": 0}, chat=False).logprobs, 0)

    def test_stream_options(self):
        r = parse({"stream": True, "stream_options": {"include_usage": True, "continuous_usage_stats": True}},
                  chat=False)
        self.assertEqual((r.stream, r.include_usage, r.continuous_usage), (True, True, True))


if __name__ == "__main__":
    unittest.main()
