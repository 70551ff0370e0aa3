// Learner benchmark on the tiny CPU model (the real `python3 -m learner` process): Train
// tokens/s through gRPC, and the engine's generation throughput with requests arriving together
// (one batch) versus one at a time, measured side by side in the same run. Then NB-Agent-shaped
// work (every prompt starts with the same 640-token system prompt) on two learners side by side,
// one with --share-prefix false: a Train step and a batch of generations. No GPU here.
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
const SYSTEM = 640; // NB-Agent's system prompt is ~640 bytes
const OWN = 24; // the question
const AGENT_RESPONSE = 96; // one cell

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
const FLAGS = { tokenFile: join(dir, "token"), seed: 1, learningRate: 1e-4, klCoef: 0.001, logLevel: "warn" };
const learner = await launchLearner({ flags: FLAGS });
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

  // NB-Agent-shaped: a shared system prompt, then the question; shared prefix on vs off.
  const plain = await launchLearner({ flags: { ...FLAGS, sharePrefix: false } });
  const plainClient = new LearnerClient(plain.address, { token: "bench-token" });
  const system = [256, 258, ...ids(SYSTEM - 3, 99), 257];
  const agentSamples = Array.from({ length: BATCH }, (_, i) => ({
    sampleId: `a/${i}`,
    trajectoryId: `t${i}`,
    promptTokenIds: [...system, 259, ...ids(OWN, i), 257, 260],
    responseTokenIds: ids(AGENT_RESPONSE, i + 1),
    samplerLogprobs: Array.from({ length: AGENT_RESPONSE }, () => -5.5),
    advantage: (i % 2) * 2 - 1,
  }));
  const agentPrompts = agentSamples.map((x) => x.promptTokenIds);
  const shared = { train: [] as number[], gen: [] as number[] };
  const full = { train: [] as number[], gen: [] as number[] };
  try {
    for (const c of [client, plainClient]) await c.train({ samples: agentSamples }); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      for (const [c, url, out] of [
        [client, learner.engineUrl, shared],
        [plainClient, plain.engineUrl, full],
      ] as const) {
        let t0 = performance.now();
        await c.train({ samples: agentSamples });
        out.train.push(performance.now() - t0);
        t0 = performance.now();
        const n = await Promise.all(agentPrompts.map((p, i) => complete(url, p, r * 100 + i)));
        out.gen.push((n.reduce((a, b) => a + b, 0) / (performance.now() - t0)) * 1000);
      }
    }
  } finally {
    plainClient.close();
    await plain.stop();
  }
  const trainSpeedup = median(full.train) / median(shared.train);
  const genSpeedup = median(shared.gen) / median(full.gen);
  console.log(
    `NB-Agent-shaped (${BATCH} x ${SYSTEM} shared + ${OWN + 3} own prompt tokens, median of ${ROUNDS}): Train ` +
      `${round(median(shared.train), 0)} ms with the shared prefix vs ${round(median(full.train), 0)} ms without ` +
      `(${round(trainSpeedup, 2)}x); generation ${round(median(shared.gen), 0)} vs ${round(median(full.gen), 0)} ` +
      `tokens/s (${round(genSpeedup, 2)}x)`,
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
    agent_train_ms_shared: round(median(shared.train), 0),
    agent_train_ms_full: round(median(full.train), 0),
    agent_train_speedup: round(trainSpeedup, 2),
    agent_generate_tokens_per_s_shared: round(median(shared.gen), 0),
    agent_generate_tokens_per_s_full: round(median(full.gen), 0),
    agent_generate_speedup: round(genSpeedup, 2),
  });
} finally {
  client.close();
  await learner.stop();
  rmSync(dir, { recursive: true, force: true });
}
