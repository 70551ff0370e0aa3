"""The CPU engine over real HTTP on port 0: the docs/engine-api.md shapes, errors that name the
field, and requests arriving together generated as one batch."""
import json
import threading
import unittest
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from helpers import TOK, http_json, on_policy, sample, trainer

from learner.engine import Api, Engine, make_server
from learner.log import silent


class EngineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.trainer = trainer(11)
        cls.engine = Engine(cls.trainer, TOK, seed=0, max_batch=16, logger=silent())
        cls.server = make_server(Api(cls.engine, "tiny"), "127.0.0.1", 0, silent())
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}"

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        cls.engine.close()

    def req(self, path, body=None):
        return http_json(self.url + path, body)

    def test_models_is_the_readiness_check(self):
        status, body = self.req("/v1/models")
        self.assertEqual((status, body["data"][0]["id"]), (200, "tiny"))

    def test_tokenize_messages_and_prompt(self):
        msgs = [{"role": "user", "content": "2+2?"}]
        status, body = self.req("/tokenize", {"model": "tiny", "messages": msgs, "add_generation_prompt": True})
        self.assertEqual(status, 200)
        self.assertEqual(body["tokens"], TOK.render_chat(msgs))
        self.assertEqual(body["count"], len(body["tokens"]))
        self.assertEqual(body["max_model_len"], 64)
        _, raw = self.req("/tokenize", {"prompt": "hi"})
        self.assertEqual(raw["tokens"], [104, 105])

    def test_completions_return_token_ids_logprobs_and_policy_version(self):
        prompt = TOK.render_chat([{"role": "user", "content": "x"}])
        status, body = self.req("/v1/completions", {
            "model": "tiny", "prompt": prompt, "max_tokens": 6, "temperature": 1.0, "top_p": 1.0, "stop": ["\n"],
            "logprobs": 1, "return_tokens_as_token_ids": True, "return_token_ids": True, "seed": 7})
        self.assertEqual(status, 200)
        c = body["choices"][0]
        self.assertEqual(body["prompt_token_ids"], prompt)
        self.assertEqual(len(c["token_ids"]), len(c["logprobs"]["token_logprobs"]))
        self.assertEqual(c["logprobs"]["tokens"], [f"token_id:{t}" for t in c["token_ids"]])
        self.assertIn(c["finish_reason"], ("stop", "length"))
        self.assertEqual(body["usage"], {"prompt_tokens": len(prompt), "completion_tokens": len(c["token_ids"]),
                                         "total_tokens": len(prompt) + len(c["token_ids"])})
        self.assertEqual(body["policy_version"], self.trainer.version)
        # Same seed, same answer.
        _, again = self.req("/v1/completions", {"prompt": prompt, "max_tokens": 6, "seed": 7, "stop": ["\n"]})
        self.assertEqual(again["choices"][0]["token_ids"], c["token_ids"])

    def test_chat_completions(self):
        msgs = [{"role": "user", "content": "hi"}]
        status, body = self.req("/v1/chat/completions", {"messages": msgs, "max_tokens": 3, "seed": 1,
                                                         "logprobs": True, "top_logprobs": 2})
        self.assertEqual(status, 200)
        c = body["choices"][0]
        self.assertEqual(c["message"]["role"], "assistant")
        self.assertEqual([e["token"] for e in c["logprobs"]["content"]], [f"token_id:{t}" for t in c["token_ids"]])
        self.assertTrue(all(len(e["top_logprobs"]) == 2 for e in c["logprobs"]["content"]))
        # Logprobs only when asked for, as OpenAI and vLLM answer.
        _, plain = self.req("/v1/chat/completions", {"messages": msgs, "max_tokens": 3, "seed": 1})
        self.assertIsNone(plain["choices"][0]["logprobs"])
        self.assertEqual(plain["choices"][0]["token_ids"], c["token_ids"])

    def test_bad_requests_name_the_field(self):
        table = [
            ({"prompt": [1, 2], "max_tokens": 0}, 400, "max_tokens"),
            ({"prompt": [1, 2], "temperature": "hot"}, 400, "temperature"),
            ({"prompt": [1, 99999]}, 400, "prompt"),
            ({"prompt": []}, 400, "prompt"),
            ({"prompt": [1] * 64}, 400, "prompt"),
            ({"prompt": [1], "stop": [1]}, 400, "stop"),
            ({"prompt": [1], "n": 2}, 400, "n"),
            ({"prompt": [1], "model": "gpt-9"}, 404, "model"),
        ]
        for body, code, field in table:
            with self.subTest(field=field):
                status, err = self.req("/v1/completions", body)
                self.assertEqual(status, code)
                self.assertTrue(err["error"]["message"].startswith(field + ":"), err)
        status, err = self.req("/tokenize", {"messages": [{"role": "robot", "content": "x"}]})
        self.assertEqual((status, err["error"]["message"][:17]), (400, "messages[0].role:"))
        self.assertEqual(self.req("/v1/nope", {})[0], 404)

    def test_with_a_token_every_route_but_health_needs_it(self):
        srv = make_server(Api(self.engine, "tiny"), "127.0.0.1", 0, silent(), token="s3cret")
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{srv.server_address[1]}"

        def status(path, auth=None, body=None):
            headers = {"authorization": auth} if auth else {}
            data = None if body is None else json.dumps(body).encode()
            try:
                return urllib.request.urlopen(urllib.request.Request(url + path, data, headers), timeout=30).status
            except urllib.error.HTTPError as e:
                return e.code

        try:
            self.assertEqual(status("/v1/models"), 401)
            self.assertEqual(status("/tokenize", "Bearer nope", {"prompt": "x"}), 401)
            self.assertEqual(status("/health"), 200)
            self.assertEqual(status("/v1/models", "Bearer s3cret"), 200)
            self.assertEqual(status("/tokenize", "Bearer s3cret", {"prompt": "x"}), 200)
        finally:
            srv.shutdown()
            srv.server_close()

    def test_max_tokens_is_capped_to_the_context(self):
        status, body = self.req("/v1/completions", {"prompt": [1] * 60, "max_tokens": 100, "seed": 1})
        self.assertEqual(status, 200)
        self.assertLessEqual(len(body["choices"][0]["token_ids"]), 4)

    def test_a_stream_of_requests_does_not_starve_training_and_versions_stay_true(self):
        prompt = TOK.render_chat([{"role": "user", "content": "q"}])
        stop = threading.Event()
        seen = []

        def client(seed):
            while not stop.is_set():
                status, body = self.req("/v1/completions", {"prompt": prompt, "max_tokens": 8, "seed": seed})
                seen.append((seed, status, body.get("policy_version")))

        with ThreadPoolExecutor(4) as pool:
            for i in range(4):
                pool.submit(client, i)
            while len(seen) < 8:
                threading.Event().wait(0.01)
            before = self.trainer.version
            s = on_policy(self.trainer, [sample(prompt, [97, 98], 1.0)])
            self.trainer.train(s)  # must get the weights while requests keep coming
            after = len(seen)
            while len(seen) < after + 8:
                threading.Event().wait(0.01)
            stop.set()
        self.assertTrue(all(code == 200 for _, code, _ in seen))
        self.assertEqual({v for _, _, v in seen}, {before, before + 1})
        for c in range(4):  # each client sees the version move forward only
            versions = [v for seed, _, v in seen if seed == c]
            self.assertEqual(versions, sorted(versions))

    def test_requests_arriving_together_are_one_batch(self):
        before, submitted = self.engine.batches, self.engine.submitted
        prompt = TOK.render_chat([{"role": "user", "content": "q"}])
        # Holding the weights lock stalls the batcher, so all 8 requests are queued by the time it
        # runs: at most the one it had already taken goes alone, the rest form one batch.
        with self.trainer.lock:
            with ThreadPoolExecutor(8) as pool:
                futs = [pool.submit(self.req, "/v1/completions", {"prompt": prompt, "max_tokens": 4, "seed": i})
                        for i in range(8)]
                while self.engine.submitted < submitted + 8:
                    threading.Event().wait(0.005)
                self.trainer.lock.release()
                try:
                    results = [f.result(timeout=30) for f in futs]
                finally:
                    self.trainer.lock.acquire()
        self.assertTrue(all(s == 200 for s, _ in results))
        self.assertLessEqual(self.engine.batches - before, 2)


if __name__ == "__main__":
    unittest.main()
