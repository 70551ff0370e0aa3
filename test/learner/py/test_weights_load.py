"""An inference-only CPU engine loads exported versions over HTTP (POST /update_weights_from_disk,
the weight-sync sidecar's call): the loaded engine generates what the exporting policy generates,
answers carry the new policy_version, and a bad export (wrong version, missing tensor, wrong shape,
truncated shard) is refused naming the problem while the old weights keep serving."""
import json
import shutil
import tempfile
import threading
import unittest
import urllib.error
import urllib.request
from pathlib import Path

from helpers import TOK, http_json, trainer

from learner.engine import Api, Engine, RequestError, make_server
from learner.export import export
from learner.log import silent


class WeightsLoadTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="l0-load-")
        self.source = trainer(3)  # the policy the learner trained and exported
        self.source.version = 5
        self.engine_trainer = trainer(4)  # different weights until it loads
        self.engine_trainer.version = -1
        self.engine = Engine(self.engine_trainer, TOK, seed=0, max_batch=4, logger=silent())
        self.server = make_server(Api(self.engine, "tiny", loads_weights=True), "127.0.0.1", 0, silent())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        self.engine.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def req(self, path, body=None):
        return http_json(self.url + path, body)

    def greedy(self):
        prompt = TOK.render_chat([{"role": "user", "content": "2+3?"}])
        status, body = self.req("/v1/completions", {"prompt": prompt, "max_tokens": 8, "temperature": 0.0})
        self.assertEqual(status, 200, body)
        return body["choices"][0]["token_ids"], body["policy_version"]

    def exported(self, version=5):
        path, _ = export(self.source.model, version, self.dir, "tiny")
        return path

    def same_weights(self, a, b):
        return all(x.equal(y) for x, y in zip(a.model.parameters(), b.model.parameters()))

    def test_loads_a_version_and_serves_it(self):
        path = self.exported()
        # A cached prefix of the old weights (keyed by version) is dropped with them.
        self.engine.prefixes.version, self.engine.prefixes.tokens, self.engine.prefixes.kv = 5, [1], []
        self.assertFalse(self.same_weights(self.source, self.engine_trainer))
        status, body = self.req("/update_weights_from_disk", {"model_path": str(path), "policy_version": 5})
        self.assertEqual((status, body["success"], body["policy_version"]), (200, True, 5), body)
        self.assertTrue(self.same_weights(self.source, self.engine_trainer))
        self.assertIsNone(self.engine.prefixes.kv)
        ids, version = self.greedy()
        self.assertEqual(version, 5)
        # The model card says which version is served (the sidecar checks it after engine restarts).
        self.assertEqual(http_json(self.url + "/v1/models")[1]["data"][0]["policy_version"], 5)
        # Loading the same version again changes nothing (the sidecar may retry a load).
        status, _ = self.req("/update_weights_from_disk", {"model_path": str(path), "policy_version": 5})
        self.assertEqual(status, 200)
        self.assertEqual(self.greedy(), (ids, 5))

    def refused(self, body, needle):
        before = [p.clone() for p in self.engine_trainer.model.parameters()]
        status, answer = self.req("/update_weights_from_disk", body)
        self.assertEqual(status, 400, answer)
        self.assertIn(needle, answer["error"]["message"])
        self.assertTrue(all(a.equal(b) for a, b in zip(before, self.engine_trainer.model.parameters())))
        self.assertEqual(self.greedy()[1], -1)

    def test_bad_requests_and_exports_are_refused_and_the_old_weights_stay(self):
        path = self.exported()
        self.refused({}, "model_path")
        self.refused({"model_path": str(path), "policy_version": "5"}, "policy_version")
        self.refused({"model_path": str(path), "policy_version": 6}, "holds v5, not v6")
        self.refused({"model_path": self.dir + "/nope"}, "manifest.json")
        manifest = json.loads((path / "manifest.json").read_text())
        shard = path / manifest["shards"][0]["file"]

        def with_manifest(edit, needle):
            m = json.loads(json.dumps(manifest))
            edit(m)
            (path / "manifest.json").write_text(json.dumps(m))
            self.refused({"model_path": str(path)}, needle)

        first = manifest["tensors"][0]["name"]
        with_manifest(lambda m: m["tensors"].__setitem__(0, "x"), "tensors[0]: must be an object")
        with_manifest(lambda m: m["tensors"][0].update(offset="x"), "tensors[0]: malformed entry")
        with_manifest(lambda m: m["tensors"][0].update(shard="a\0b"), "tensors[0]")
        with_manifest(lambda m: m.update(tensors={}), "tensors: must be a list")
        with_manifest(lambda m: m["tensors"].pop(0), "lacks 1 parameter")
        with_manifest(lambda m: m["tensors"][0].update(shape=[1, 2]), f"tensors[0] ({first})")
        with_manifest(lambda m: m["tensors"][0].update(name="evil"), "no parameter 'evil'")
        with_manifest(lambda m: m["tensors"][0].update(shard="../x"), "not a file name")
        (path / "manifest.json").write_text(json.dumps(manifest))
        shard.write_bytes(shard.read_bytes()[:-100])
        self.refused({"model_path": str(path)}, "do not hold it")


class WeightsRootTest(unittest.TestCase):
    def test_only_directories_under_the_weights_root_are_loaded(self):
        base = tempfile.mkdtemp(prefix="l0-root-")
        try:
            root, outside = Path(base) / "weights", Path(base) / "elsewhere"
            path, _ = export(trainer(3).model, 2, str(outside), "tiny")
            inside, _ = export(trainer(3).model, 2, str(root / "versions"), "tiny")
            t = trainer(4)
            api = Api(Engine(t, TOK, seed=0, max_batch=2, logger=silent()), "tiny", True, str(root))
            try:
                for bad in (str(path), str(root / "versions" / ".." / ".." / "elsewhere" / "2")):
                    with self.assertRaisesRegex(RequestError, "not under this engine's weights root"):
                        api.update_weights_from_disk({"model_path": bad})
                self.assertEqual(api.update_weights_from_disk({"model_path": str(inside)})["policy_version"], 2)
            finally:
                api.engine.close()
        finally:
            shutil.rmtree(base, ignore_errors=True)


class ColocatedEngineTest(unittest.TestCase):
    def test_the_learners_own_engine_has_no_load_route(self):
        t = trainer(1)
        engine = Engine(t, TOK, seed=0, max_batch=2, logger=silent())
        server = make_server(Api(engine, "tiny"), "127.0.0.1", 0, silent())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            r = urllib.request.Request(f"http://127.0.0.1:{server.server_address[1]}/update_weights_from_disk",
                                       data=b"{}", headers={"content-type": "application/json"})
            with self.assertRaises(urllib.error.HTTPError) as ctx:
                urllib.request.urlopen(r, timeout=10)
            self.assertEqual(ctx.exception.code, 404)
        finally:
            server.shutdown()
            server.server_close()
            engine.close()


if __name__ == "__main__":
    unittest.main()
