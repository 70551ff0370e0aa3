// Learner benchmark on the tiny CPU model (the real `python3 -m learner` process): Train
// tokens/s through gRPC, and the engine's generation throughput with requests arriving together
// (one batch) versus one at a time, measured side by side in the same run. No GPU here.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LearnerClient, launchLearner } from "../../images/trainer/learner/client.js";
import { emit, median, round } from "./stats.js";

const ROUNDS = 5;
const BATCH = 32; // samples per Train step
const PROMPT = 96;
const RESPONSE = 160;
const GEN_REQUESTS = 32;
const GEN_TOKENS = 64;

interface Completion {
  choices: { token_ids: number[] }[];
}

const ids = (n: number, salt: number) => Array.from({ length: n }, (_, i) => (i * 31 + salt * 7) % 256);

async function complete(url: string, prompt: number[], seed: number): Promise<number> {
  const res = await fetch(`${url}/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt, max_tokens: GEN_TOKENS, temperature: 1, seed }),
  });
  if (!res.ok) throw new Error(`engine answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as Completion).choices[0]!.token_ids.length;
}

const dir = mkdtempSync(join(tmpdir(), "l0-bench-learner-"));
writeFileSync(join(dir, "token"), "bench-token");
const learner = await launchLearner({
  flags: { tokenFile: join(dir, "token"), seed: 1, learningRate: 1e-4, klCoef: 0.001, logLevel: "warn" },
});
const client = new LearnerClient(learner.address, { token: "bench-token" });
try {
  const info = await client.info();
  console.log(
    `tiny model: ${info.parameters} parameters on ${info.device}, 1 torch thread, OPENBLAS_NUM_THREADS=1`,
  );

  const samples = Array.from({ length: BATCH }, (_, i) => ({
    sampleId: `b/${i}`,
    trajectoryId: `t${i % 8}`,
    promptTokenIds: [256, ...ids(PROMPT - 1, i)],
    responseTokenIds: ids(RESPONSE, i + 1),
    samplerLogprobs: Array.from({ length: RESPONSE }, () => -5.5),
    advantage: (i % 2) * 2 - 1,
  }));
  await client.train({ samples }); // warm-up (allocations, reference copy)
  const serverTps: number[] = [];
  const clientTps: number[] = [];
  const stepMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    const res = await client.train({ samples });
    const ms = performance.now() - t0;
    serverTps.push(res.tokensPerSecond);
    clientTps.push((res.tokens / ms) * 1000);
    stepMs.push(ms);
  }
  console.log(
    `Train (${BATCH} x ${PROMPT + RESPONSE} tokens, KL on, median of ${ROUNDS}): ` +
      `${round(median(serverTps), 0)} tokens/s in the learner, ${round(median(clientTps), 0)} tokens/s ` +
      `end to end over gRPC, ${round(median(stepMs), 0)} ms per step`,
  );

  const prompts = Array.from({ length: GEN_REQUESTS }, (_, i) => [256, 259, ...ids(30, i), 257, 260]);
  const batched: number[] = [];
  const single: number[] = [];
  for (let r = 0; r < 3; r++) {
    let t0 = performance.now();
    const counts = await Promise.all(prompts.map((p, i) => complete(learner.engineUrl, p, r * 100 + i)));
    batched.push((counts.reduce((a, b) => a + b, 0) / (performance.now() - t0)) * 1000);
    t0 = performance.now();
    let n = 0;
    for (const [i, p] of prompts.entries()) n += await complete(learner.engineUrl, p, r * 100 + i);
    single.push((n / (performance.now() - t0)) * 1000);
  }
  const ratio = median(batched) / median(single);
  console.log(
    `Generate (${GEN_REQUESTS} requests x up to ${GEN_TOKENS} tokens, median of 3): together ` +
      `${round(median(batched), 0)} tokens/s, one at a time ${round(median(single), 0)} tokens/s, ratio ${round(ratio, 2)}`,
  );
  console.log(
    "GPU: none lent to this task; the transformers ~0.5B tokens/s and MFU figures were not measured.",
  );
  emit({
    bench: "learner",
    device: "cpu",
    parameters: info.parameters,
    train_tokens_per_s: round(median(serverTps), 0),
    train_tokens_per_s_end_to_end: round(median(clientTps), 0),
    train_step_ms: round(median(stepMs), 0),
    generate_batched_tokens_per_s: round(median(batched), 0),
    generate_single_tokens_per_s: round(median(single), 0),
    batched_vs_single: round(ratio, 2),
  });
} finally {
  client.close();
  await learner.stop();
  rmSync(dir, { recursive: true, force: true });
}
