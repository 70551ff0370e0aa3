// The learner from the hub's side: its Python unit tests, then the real `python3 -m learner`
// process driven over gRPC by the TypeScript client (auth, field-named errors, train on tokens
// the engine sampled, SFT, save/load resume, export hashes) and the `l0 learner` command.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { L0Error } from "../../lib/errors.js";
import { parseManifestText } from "../../lib/weights/manifest.js";
import {
  type LaunchedLearner,
  LearnerClient,
  launchLearner,
  learnerArgs,
} from "../../images/trainer/learner/client.js";
import { findRunConfig } from "../../images/trainer/learner/cli.js";

const PY = "/usr/bin/python3";

interface Completion {
  choices: { token_ids: number[]; logprobs: { token_logprobs: number[] } }[];
  prompt_token_ids: number[];
  policy_version: number;
}

async function post<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).to.equal(200);
  return (await res.json()) as T;
}

async function rejects(p: Promise<unknown>): Promise<L0Error> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(L0Error);
    return err as L0Error;
  }
  throw new Error("expected a rejection");
}

describe("learner", function () {
  this.timeout(120_000);

  it("passes its Python unit tests (loss, trainer, checkpoints, export, engine, toy task)", () => {
    const r = spawnSync(PY, ["-m", "unittest", "discover", "-s", "test/learner/py"], {
      encoding: "utf8",
      env: { ...process.env, OPENBLAS_NUM_THREADS: "1" },
      timeout: 110_000,
    });
    expect(r.status, r.stderr.slice(-4000)).to.equal(0);
    expect(r.stderr).to.match(/\nOK/);
  });

  it("builds flags for the Python program and finds --run-config", () => {
    expect(learnerArgs({ tokenFile: "/t", n_layer: 2, enginePort: -1, seed: undefined })).to.deep.equal([
      "--token-file",
      "/t",
      "--n-layer",
      "2",
      "--engine-port",
      "-1",
    ]);
    expect(findRunConfig(["--seed", "1", "--run-config", "r.yaml"])).to.deep.equal({
      path: "r.yaml",
      index: 3,
      inline: false,
    });
    expect(findRunConfig(["--run-config=r.yaml"])?.path).to.equal("r.yaml");
    expect(findRunConfig(["--seed", "1"])).to.equal(null);
  });

  describe("the real Python service from the TypeScript client", () => {
    const token = "tok-" + Math.random().toString(36).slice(2);
    let dir: string;
    let learner: LaunchedLearner;
    let client: LearnerClient;
    const logs: unknown[] = [];

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "l0-learner-test-"));
      writeFileSync(join(dir, "token"), token + "\n", { mode: 0o600 });
      const demo = {
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "hello" },
        ],
      };
      writeFileSync(join(dir, "demos.jsonl"), `${JSON.stringify(demo)}\n${JSON.stringify(demo)}\n`);
      learner = await launchLearner({
        flags: {
          tokenFile: join(dir, "token"),
          nLayer: 1,
          nEmbd: 32,
          nHead: 2,
          blockSize: 128,
          seed: 3,
          learningRate: 1e-3,
          exportDir: join(dir, "weights"),
          sftData: join(dir, "demos.jsonl"), // one warm-start step before serving
          sftLearningRate: 1e-2,
          metricsPort: 0,
        },
        onLog: (l) => logs.push(l),
      });
      client = new LearnerClient(learner.address, { token, timeoutMs: 30_000 });
    });

    after(async () => {
      client?.close();
      const code = await learner?.stop();
      expect(code).to.equal(0); // SIGTERM is a graceful stop
      rmSync(dir, { recursive: true, force: true });
    });

    it("answers Info after the warm-start and refuses calls without the run token", async () => {
      const info = await client.info();
      expect(info.model).to.equal("tiny");
      expect(info.policyVersion).to.equal(1); // the --sft-data step
      expect(
        logs.some(
          (l) => typeof l === "object" && (l as { message?: string }).message === "supervised warm-start",
        ),
      ).to.equal(true);
      expect(info.openaiBaseUrl).to.equal(learner.engineUrl);
      expect(info.parameters).to.be.greaterThan(1000);
      const stranger = new LearnerClient(learner.address, { token: "wrong" });
      try {
        expect((await rejects(stranger.info())).kind).to.equal("Unauthenticated");
      } finally {
        stranger.close();
      }
    });

    it("trains on exactly what the engine sampled: ratio 1, KL 0, a new policy version", async () => {
      const base = learner.engineUrl.replace(/\/v1$/, "");
      const tok = await post<{ tokens: number[] }>(`${base}/tokenize`, {
        model: "tiny",
        messages: [{ role: "user", content: "What is 2+2?" }],
        add_generation_prompt: true,
      });
      const before = (await client.info()).policyVersion;
      const c = await post<Completion>(`${learner.engineUrl}/completions`, {
        model: "tiny",
        prompt: tok.tokens,
        max_tokens: 12,
        temperature: 1,
        logprobs: 1,
        return_token_ids: true,
        seed: 5,
      });
      expect(c.prompt_token_ids).to.deep.equal(tok.tokens);
      expect(c.policy_version).to.equal(before);
      const choice = c.choices[0]!;
      const res = await client.train({
        step: 1,
        samples: [
          {
            sampleId: "traj-1/0",
            trajectoryId: "traj-1",
            promptTokenIds: tok.tokens,
            responseTokenIds: choice.token_ids,
            samplerLogprobs: choice.logprobs.token_logprobs,
            advantage: 1,
          },
        ],
      });
      expect(res.clipFraction).to.equal(0);
      expect(res.kl).to.equal(0);
      expect(res.policyVersion).to.equal(before + 1);
      expect(res.tokens).to.equal(tok.tokens.length + choice.token_ids.length);
      expect(res.tokensPerSecond).to.be.greaterThan(0);
      expect(res.gradNorm).to.be.greaterThan(0);
      const next = await post<Completion>(`${learner.engineUrl}/completions`, {
        prompt: tok.tokens,
        max_tokens: 1,
      });
      expect(next.policy_version).to.equal(before + 1);
    });

    it("rejects a malformed batch with INVALID_ARGUMENT naming the field, and keeps the version", async () => {
      const before = (await client.info()).policyVersion;
      const err = await rejects(
        client.train({
          samples: [
            { promptTokenIds: [256, 1], responseTokenIds: [2, 3], samplerLogprobs: [-1, -1], advantage: NaN },
            { promptTokenIds: [256, 1], responseTokenIds: [2, 3], samplerLogprobs: [-1], advantage: 1 },
          ],
        }),
      );
      expect(err.kind).to.equal("InvalidArgument");
      expect(err.violations.map((v) => v.field)).to.deep.equal([
        "samples[0].advantage",
        "samples[1].sampler_logprobs",
      ]);
      expect((await client.info()).policyVersion).to.equal(before);
    });

    it("warm-starts with Sft, and resumes from Save/Load to the identical next step", async () => {
      const demo = { promptTokenIds: [256, 259, 104, 105, 257, 260], responseTokenIds: [111, 107, 257] };
      const first = await client.sft({ samples: [demo], learningRate: 1e-2 });
      const second = await client.sft({ samples: [demo], learningRate: 1e-2 });
      expect(second.loss).to.be.lessThan(first.loss);
      const batch = {
        step: 9,
        samples: [
          { ...demo, samplerLogprobs: [-0.5, -0.5, -0.5], advantage: 1, trajectoryId: "a" },
          { ...demo, responseTokenIds: [120, 121, 257], samplerLogprobs: [-3, -3, -3], advantage: -1 },
        ],
      };
      const saved = await client.save(join(dir, "ckpt"));
      const a = await client.train(batch);
      const loaded = await client.load(join(dir, "ckpt"));
      expect(loaded.policyVersion).to.equal(saved.policyVersion);
      const b = await client.train(batch);
      expect([b.loss, b.kl, b.gradNorm, b.policyVersion]).to.deep.equal([
        a.loss,
        a.kl,
        a.gradNorm,
        a.policyVersion,
      ]);
      expect((await rejects(client.load(join(dir, "nothing-here")))).kind).to.equal("FailedPrecondition");
    });

    it("exports safetensors shards whose manifest hashes match the bytes", async () => {
      const res = await client.exportWeights("", 64 * 1024);
      const m = res.manifest!;
      expect(m.version).to.equal((await client.info()).policyVersion);
      expect(m.shards!.length).to.be.greaterThan(1);
      for (const s of m.shards!) {
        const bytes = readFileSync(join(res.dir!, s.file!));
        expect(createHash("sha256").update(bytes).digest("hex")).to.equal(s.sha256);
        for (const c of s.chunks!) {
          const piece = bytes.subarray(c.offset!, c.offset! + c.sizeBytes!);
          expect(createHash("sha256").update(piece).digest("hex")).to.equal(c.sha256);
        }
        const headerLen = Number(bytes.readBigUInt64LE(0));
        const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString("utf8")) as Record<
          string,
          unknown
        >;
        expect(header.__metadata__).to.deep.equal({ format: "pt" });
      }
      // The weight service's own parser accepts the file the learner wrote.
      const onDisk = parseManifestText(readFileSync(join(res.dir!, "manifest.json"), "utf8"));
      expect(onDisk.version).to.equal(m.version);
      expect(onDisk.tensors.map((t) => t.name)).to.deep.equal(m.tensors!.map((t) => t.name));
    });

    it("serves Prometheus metrics and probes", async () => {
      expect((await fetch(`${learner.metricsUrl}/readyz`)).status).to.equal(200);
      const text = await (await fetch(`${learner.metricsUrl}/metrics`)).text();
      const value = (series: string) => Number(new RegExp(`^${series} (\\S+)$`, "m").exec(text)?.[1]);
      expect(value('l0_learner_steps_total\\{kind="train"\\}')).to.be.at.least(3);
      expect(value('l0_learner_steps_total\\{kind="sft"\\}')).to.equal(2); // the Sft calls (the start-up one is not a call)
      expect(value('l0_learner_rejected_total\\{reason="InvalidField"\\}')).to.equal(1);
      expect(value("l0_learner_policy_version")).to.equal((await client.info()).policyVersion);
      expect(value('l0_learner_engine_requests_total\\{outcome="ok"\\}')).to.equal(2);
    });

    it("logs JSON lines with fixed messages and fields", () => {
      const trained = logs.find(
        (l) => typeof l === "object" && (l as { message?: string }).message === "trained",
      );
      expect(trained).to.include({ component: "learner", level: "info", step: 1 });
    });
  });

  it("`l0 learner` validates --run-config and names the field", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-learner-cli-"));
    try {
      const run = join(dir, "run.yaml");
      writeFileSync(
        run,
        "kind: TrainingRun\nspec:\n  model: {name: tiny}\n  dataset: {path: d.jsonl}\n  algorithm: {clipLow: 7}\n",
      );
      const r = spawnSync(process.execPath, ["bin/l0.js", "learner", "--run-config", run], {
        encoding: "utf8",
      });
      expect(r.status).to.equal(2);
      expect(r.stderr).to.match(/clipLow/);
      const noToken = spawnSync(process.execPath, ["bin/l0.js", "learner", "--engine-port", "-1"], {
        encoding: "utf8",
      });
      expect(noToken.status).to.equal(2);
      expect(noToken.stderr).to.match(/--token-file \(L0_LEARNER_TOKEN_FILE\): is required/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
