// The pod contract between the operator and the programs it runs: every L0_* variable a builder
// sets is one the program's own config spec reads, the values parse with that spec (required ones
// set, enums and numbers valid), and args[0] is a registered `l0` subcommand. A rename on either
// side fails here instead of in a pod that exits at start.
import { expect } from "chai";
import { Command } from "commander";
import { type V1Container, type V1EnvVar } from "@kubernetes/client-node";
import { type ResolvedAgentWorkerPool, type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { readFileSync } from "node:fs";
import { COMMANDS } from "../../cli/commands.js";
import { OPERATOR_CONFIG } from "../../operator/config.js";
import { type ConfigSpec, envName, loadConfig } from "../../lib/config.js";
import { SIDECAR_CONFIG, SIDECAR_ENV_PREFIX } from "../../images/inference/config.js";
import { WORKER_CONFIG, WORKER_ENV_PREFIX } from "../../images/worker/config.js";
import { TRAINER_CONFIG, TRAINER_ENV_PREFIX } from "../../images/trainer/trainer/config.js";
import { buildTrainerJob } from "../../operator/trainingrun/build.js";
import { buildInference, buildOwnedPool } from "../../operator/trainingrun/build-inference.js";
import { buildWorkerDeployment } from "../../operator/workerpool/build.js";
import { validatePool } from "../../operator/validate.js";
import { resolvedRun } from "../fixtures/runs.js";

function makeRun(spec: Record<string, unknown>): ResolvedTrainingRun {
  const r = resolvedRun(spec, "qa", "ns");
  return { ...r, metadata: { ...r.metadata, uid: "run-uid", generation: 1 } };
}
function poolOf(run: ResolvedTrainingRun): ResolvedAgentWorkerPool {
  const p = buildOwnedPool(run, 1);
  const v = validatePool({ ...p, metadata: { ...p.metadata, uid: "pool-uid" } });
  if ("invalid" in v) throw new Error(v.invalid.message);
  return v.pool;
}

const registered = (): string[] => {
  const program = new Command("l0");
  for (const register of COMMANDS) register(program);
  return program.commands.map((c) => c.name());
};

/**
 * Environment as the program would see it: plain values as they are, downward-API values as a
 * stand-in (the kubelet fills them). A secretKeyRef is reported: secrets go in files.
 */
function podEnv(env: readonly V1EnvVar[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    if (e.valueFrom?.secretKeyRef) throw new Error(`${e.name} takes a Secret as an environment value`);
    out[e.name] = e.value ?? (e.valueFrom?.fieldRef ? "10.0.0.7" : "");
  }
  return out;
}

/** Checks one container against one program's config spec; returns the parsed config. */
function checkContainer(c: V1Container, spec: ConfigSpec, prefix: string, command: string) {
  expect(c.args?.[0], `${c.name}: args[0]`).to.equal(command);
  expect(registered(), `${command} is an l0 subcommand`).to.include(command);
  const known = new Set(Object.keys(spec).map((k) => envName(prefix, k)));
  const env = podEnv(c.env ?? []);
  const unread = Object.keys(env).filter((n) => n.startsWith("L0_") && !known.has(n));
  expect(unread, `${c.name}: L0_* variables ${command} does not read`).to.deep.equal([]);
  // Throws naming every missing required or malformed value.
  return loadConfig(spec, { env, envPrefix: prefix });
}

const runs: Array<[string, Record<string, unknown>]> = [
  ["colocated engine", {}],
  ["separate vLLM inference", { inference: { engine: "vllm", port: 9000 } }],
  ["separate SGLang inference", { inference: { engine: "sglang", image: "lmsysorg/sglang:x" } }],
  [
    "search tools with a key Secret, runtimeClass sandbox",
    {
      workers: {
        sandbox: { mode: "runtimeClass", runtimeClassName: "gvisor" },
        tools: { search: { backend: "http", url: "https://s", secretRef: { name: "k", key: "key" } } },
      },
    },
  ],
  ["local search corpus", { workers: { tools: { search: { backend: "local", corpusPath: "/c.jsonl" } } } }],
  [
    "an evaluation judge with a key Secret",
    {
      dataset: { path: "/d.jsonl", evalPath: "/e.jsonl" },
      evaluation: { judge: { url: "https://judge.example", model: "grader", secretRef: { name: "jk" } } },
    },
  ],
];

describe("operator ↔ programs contract", () => {
  for (const [what, spec] of runs) {
    describe(what, () => {
      const run = makeRun(spec);

      it("worker Deployment: l0 worker reads every L0_WORKER_* it is given", () => {
        const pod = buildWorkerDeployment(poolOf(run), run, 1).spec!.template.spec!;
        const cfg = checkContainer(pod.containers[0]!, WORKER_CONFIG, WORKER_ENV_PREFIX, "worker");
        const keyFile = String(cfg.searchKeyFile);
        if (keyFile) {
          // The key file lies in a mounted Secret volume.
          const mount = pod.containers[0]!.volumeMounts!.find((m) => keyFile.startsWith(m.mountPath));
          expect(mount, "search key file is on a mount").to.not.equal(undefined);
          expect(pod.volumes!.find((v) => v.name === mount!.name)!.secret).to.not.equal(undefined);
        }
      });

      it("trainer Job: l0 trainer reads every L0_TRAINER_* it is given", () => {
        const pod = buildTrainerJob(run, 0).spec!.template.spec!;
        const cfg = checkContainer(pod.containers[0]!, TRAINER_CONFIG, TRAINER_ENV_PREFIX, "trainer");
        const keyFile = String(cfg.judgeKeyFile);
        expect(keyFile !== "", "a judge key file exactly when the run names its Secret").to.equal(
          run.spec.evaluation?.judge?.secretRef !== undefined,
        );
        if (keyFile) {
          const mount = pod.containers[0]!.volumeMounts!.find((m) => keyFile.startsWith(m.mountPath + "/"));
          expect(mount, "judge key file is on a mount").to.not.equal(undefined);
          expect(pod.volumes!.find((v) => v.name === mount!.name)!.secret).to.deep.include({
            secretName: "jk",
          });
          expect(keyFile.endsWith("/apiKey"), "the key's default name, from the CRD").to.equal(true);
        }
      });

      if (spec.inference)
        it("inference Deployment: the weight-sync sidecar is l0 sidecar, sharing --root with the engine", () => {
          const pod = buildInference(run).deployment.spec!.template.spec!;
          const [engine, sidecar] = pod.containers;
          const cfg = checkContainer(sidecar!, SIDECAR_CONFIG, SIDECAR_ENV_PREFIX, "sidecar");
          const vol = sidecar!.volumeMounts!.find((m) => m.mountPath === cfg.root)!;
          expect(vol, "--root is a mount").to.not.equal(undefined);
          expect(
            engine!.volumeMounts!.map((m) => m.name),
            "engine sees the same volume",
          ).to.include(vol.name);
          expect(sidecar!.env!.find((e) => e.name === "POD_IP")!.valueFrom!.fieldRef!.fieldPath).to.equal(
            "status.podIP",
          );
          const ports = Object.fromEntries(sidecar!.ports!.map((p) => [p.name, p.containerPort]));
          expect(ports).to.deep.equal({
            peers: cfg.peerPort,
            "peers-bulk": cfg.peerBulkPort,
            metrics: cfg.metricsPort,
          });
          expect(cfg.engineUrl).to.match(/^http:\/\/127\.0\.0\.1:/);
          expect(engine!.env ?? [], "the engine is not an l0 program").to.satisfy((e: V1EnvVar[]) =>
            e.every((x) => !x.name.startsWith("L0_")),
          );
        });
    });
  }

  it("trainer, worker and sidecar images: the run's or pool's own, else the operator's defaults", () => {
    const images = { trainer: "reg/t:9", worker: "reg/w:9", sidecar: "reg/s:9" };
    const run = makeRun({ inference: {} });
    expect(buildTrainerJob(run, 0, images).spec!.template.spec!.containers[0]!.image).to.equal("reg/t:9");
    expect(buildInference(run, images).deployment.spec!.template.spec!.containers[1]!.image).to.equal(
      "reg/s:9",
    );
    expect(
      buildWorkerDeployment(poolOf(run), run, 1, images).spec!.template.spec!.containers[0]!.image,
    ).to.equal("reg/w:9");
    const own = makeRun({
      trainer: { image: "own/t:1" },
      inference: { sidecarImage: "own/s:1" },
      workers: { image: "own/w:1" },
    });
    expect(buildTrainerJob(own, 0, images).spec!.template.spec!.containers[0]!.image).to.equal("own/t:1");
    expect(buildInference(own, images).deployment.spec!.template.spec!.containers[1]!.image).to.equal(
      "own/s:1",
    );
    expect(
      buildWorkerDeployment(poolOf(own), own, 1, images).spec!.template.spec!.containers[0]!.image,
    ).to.equal("own/w:1");
  });

  it("the chart's operator Deployment sets only L0_OPERATOR_* variables l0 operator reads", () => {
    const tpl = readFileSync("charts/l0-operator/templates/deployment.yaml", "utf8");
    const set = [...tpl.matchAll(/- name: (L0_[A-Z0-9_]+)/g)].map((m) => m[1]!);
    expect(set).to.include.members([
      "L0_OPERATOR_DEFAULT_TRAINER_IMAGE",
      "L0_OPERATOR_DEFAULT_WORKER_IMAGE",
      "L0_OPERATOR_DEFAULT_SIDECAR_IMAGE",
    ]);
    const known = new Set(Object.keys(OPERATOR_CONFIG).map((k) => envName("L0_OPERATOR_", k)));
    expect(set.filter((n) => !known.has(n))).to.deep.equal([]);
    const cfg = loadConfig(OPERATOR_CONFIG, {
      env: { L0_OPERATOR_DEFAULT_WORKER_IMAGE: "reg/w:9" },
      envPrefix: "L0_OPERATOR_",
    });
    expect(cfg.defaultWorkerImage).to.equal("reg/w:9");
  });

  it("the check itself catches a variable no program reads and a missing required one", () => {
    const c: V1Container = {
      name: "worker",
      args: ["worker"],
      env: [
        { name: "L0_WORKER_HUB", value: "h:1" },
        { name: "L0_WORKER_ID", value: "x" },
      ],
    };
    expect(() => checkContainer(c, WORKER_CONFIG, WORKER_ENV_PREFIX, "worker")).to.throw(/L0_WORKER_ID/);
    c.env = [{ name: "L0_WORKER_HUB", value: "h:1" }];
    expect(() => checkContainer(c, WORKER_CONFIG, WORKER_ENV_PREFIX, "worker")).to.throw(
      /L0_WORKER_TOKEN_FILE/,
    );
    expect(() =>
      checkContainer({ ...c, args: ["weight-sync"] }, WORKER_CONFIG, WORKER_ENV_PREFIX, "weight-sync"),
    ).to.throw(/subcommand/);
  });
});
