// Benchmark of the in-process API server: warm start-up, and GET/create round trips through
// client-node beside a bare node:http server answering the same JSON through the same client
// (the ceiling). Run: `node --import tsx test/kube/bench.ts`; last line is one JSON object.
import { createServer } from "node:http";
import { type AddressInfo } from "node:net";
import * as k8s from "@kubernetes/client-node";
import { emit, median, round } from "../bench/stats.js";
import { startKubeServer } from "./server.js";

const ROUNDS = 5;
const OPS = 200;

async function timeOps(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return ((performance.now() - t0) * 1000) / n; // µs per op
}

await startKubeServer({ crdDir: "crds" }).then((k) => k.stop()); // module load + schema compile
const starts: number[] = [];
for (let i = 0; i < 20; i++) {
  const t0 = performance.now();
  const k = await startKubeServer({ crdDir: "crds" });
  starts.push(performance.now() - t0);
  await k.stop();
}

const kube = await startKubeServer({ crdDir: "crds", sim: false });
const core = kube.kubeConfig().makeApiClient(k8s.CoreV1Api);
const cm = await core.createNamespacedConfigMap({
  namespace: "default",
  body: { metadata: { name: "bench" }, data: { a: "1" } },
});
const body = JSON.stringify(cm);
const bare = createServer((_req, res) => {
  res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
});
await new Promise<void>((ok) => bare.listen(0, "127.0.0.1", ok));
const kc = new k8s.KubeConfig();
kc.loadFromOptions({
  clusters: [
    { name: "b", server: `http://127.0.0.1:${(bare.address() as AddressInfo).port}`, skipTLSVerify: true },
  ],
  users: [{ name: "u", token: "t" }],
  contexts: [{ name: "b", cluster: "b", user: "u" }],
  currentContext: "b",
});
const bareCore = kc.makeApiClient(k8s.CoreV1Api);

const get: number[] = [];
const ceiling: number[] = [];
const create: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  get.push(await timeOps(OPS, () => core.readNamespacedConfigMap({ name: "bench", namespace: "default" })));
  ceiling.push(
    await timeOps(OPS, () => bareCore.readNamespacedConfigMap({ name: "bench", namespace: "default" })),
  );
  create.push(
    await timeOps(OPS, (i) =>
      core.createNamespacedConfigMap({
        namespace: "default",
        body: { metadata: { name: `c-${r}-${i}` }, data: { i: String(i) } },
      }),
    ),
  );
}
await kube.stop();
bare.close();

const figures = {
  bench: "kube",
  start_ms_p50: round(median(starts), 2),
  start_ms_max: round(Math.max(...starts), 2),
  get_us: round(median(get), 0),
  get_ceiling_us: round(median(ceiling), 0),
  get_vs_ceiling: round(median(get) / median(ceiling), 2),
  create_us: round(median(create), 0),
};
console.log(
  `warm start-up: median ${figures.start_ms_p50} ms, max ${figures.start_ms_max} ms (20 starts, CRDs from crds/)`,
);
console.log(
  `GET configmap via client-node: ${figures.get_us} µs; bare node:http ceiling ${figures.get_ceiling_us} µs (x${figures.get_vs_ceiling})`,
);
console.log(
  `create configmap via client-node: ${figures.create_us} µs (median of ${ROUNDS} rounds of ${OPS})`,
);
emit(figures);
