"""Streaming over real HTTP on port 0: with the same seed a stream carries exactly the tokens,
logprobs and text of the non-streamed answer (stop strings included), refusals come before the
stream as plain 400s, and a generation failure mid-stream is an error event, not a silent end."""
import json
import threading
import unittest
import urllib.error
import urllib.request

from helpers import TOK, http_json, trainer

from learner.engine import Api, Engine, make_server
from learner.log import silent

MSGS = [{"role": "user", "content": "hi"}]


def post_stream(url, body):
    """POSTs a streamed request; returns (status, content type, events), "[DONE]" kept as is."""
    r = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(r, timeout=30) as resp:
        raw = resp.read().decode()
        kind = resp.headers["content-type"]
    out = []
    for ev in raw.split("\n\n")[:-1]:
        data = ev.removeprefix("data: ")
        out.append(data if data == "[DONE]" else json.loads(data))
    return resp.status, kind, out


def joined(chunks, chat):
    text, ids, lps = "", [], []
    for c in chunks:
        if c == "[DONE]" or not c["choices"]:
            continue
        ch = c["choices"][0]
        text += ch["delta"].get("content", "") if chat else ch["text"]
        ids += ch.get("token_ids", [])
        if ch["logprobs"] is not None:
            lps += [e["logprob"] for e in ch["logprobs"]["content"]] if chat else ch["logprobs"]["token_logprobs"]
    return text, ids, lps


class Server:
    def __init__(self, t):
        self.engine = Engine(t, TOK, seed=0, max_batch=8, logger=silent())
        self.server = make_server(Api(self.engine, "tiny"), "127.0.0.1", 0, silent())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.engine.close()


class StreamTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(trainer(11))

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def stop_inside(self, path, body):
        """A two-character stop string the seeded sample hits a few tokens in (two ASCII bytes it
        samples there first), so its first byte is held back before the second one drops it."""
        _, full = http_json(self.srv.url + path, body)
        ids = full["choices"][0]["token_ids"]
        text = bytes(t if t < 256 else 0 for t in ids)
        at = next(i for i in range(2, len(ids) - 1)
                  if all(32 <= t < 127 for t in ids[i:i + 2]) and text.find(text[i:i + 2]) == i)
        return text[at:at + 2].decode(), at

    def test_a_stream_is_the_non_streamed_answer_in_pieces(self):
        for path, chat, base in [("/v1/completions", False, {"prompt": "Q: 2+2?\nA:", "logprobs": 1}),
                                 ("/v1/chat/completions", True, {"messages": MSGS, "logprobs": True})]:
            body = {**base, "max_tokens": 40, "seed": 5, "temperature": 1.0}
            stop, at = self.stop_inside(path, body)
            body["stop"] = [stop]
            with self.subTest(path=path):
                _, whole = http_json(self.srv.url + path, body)
                status, kind, chunks = post_stream(self.srv.url + path, {**body, "stream": True})
                self.assertEqual((status, kind), (200, "text/event-stream"))
                c = whole["choices"][0]
                self.assertEqual((c["finish_reason"], len(c["token_ids"])), ("stop", at))
                text = c["message"]["content"] if chat else c["text"]
                lps = [e["logprob"] for e in c["logprobs"]["content"]] if chat else c["logprobs"]["token_logprobs"]
                self.assertEqual(joined(chunks, chat), (text, c["token_ids"], lps))
                finishes = [x["choices"][0]["finish_reason"] for x in chunks[:-1]]
                self.assertEqual(finishes[-1], "stop")
                self.assertEqual(chunks[-1], "[DONE]")

    def test_refusals_come_before_the_stream(self):
        status, err = http_json(self.srv.url + "/v1/chat/completions",
                                {"messages": MSGS, "stream": True, "tools": [{"type": "function"}]})
        self.assertEqual((status, err["error"]["param"]), (400, "tools"))

    def test_the_connection_serves_the_next_request_after_a_stream(self):
        # Chunked transfer encoding ends the stream without closing the connection (keep-alive).
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.srv.server.server_address[1], timeout=30)
        try:
            for _ in range(2):
                conn.request("POST", "/v1/completions", json.dumps({"prompt": "x", "max_tokens": 3, "stream": True}),
                             {"content-type": "application/json"})
                resp = conn.getresponse()
                self.assertEqual(resp.read().decode().split("\n\n")[-2], "data: [DONE]")
        finally:
            conn.close()


class FailureTest(unittest.TestCase):
    def test_a_failure_mid_stream_is_an_error_event(self):
        t = trainer(3)
        srv = Server(t)
        calls = {"n": 0}
        forward = t.model.forward

        def failing(*a, **kw):  # prefill and one step work, then the model breaks
            calls["n"] += 1
            if calls["n"] > 2:
                raise RuntimeError("boom")
            return forward(*a, **kw)

        t.model.forward = failing
        try:
            status, _, chunks = post_stream(srv.url + "/v1/completions", {"prompt": "x", "max_tokens": 10,
                                                                          "stream": True})
        finally:
            srv.close()
        self.assertEqual(status, 200)
        self.assertEqual(chunks[-1], "[DONE]")
        self.assertEqual(chunks[-2]["error"]["type"], "server_error")
        self.assertGreaterEqual(len(chunks), 3)  # tokens before the failure were sent


if __name__ == "__main__":
    unittest.main()
