// `l0 render`: the objects a manifest becomes, from the reconcilers' own child lists and builders
// (not a second code path), errors naming the document and field, and the command's output.
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { expect } from "chai";
import { parseAllDocuments, stringify } from "yaml";
import { type KubernetesObject } from "@kubernetes/client-node";
import { BUILTIN_IMAGES } from "../../operator/images.js";
import { TOKEN_PLACEHOLDER, renderManifest } from "../../operator/render.js";
import { formatObjects } from "../../operator/render-cli.js";
import { buildTrainerJob } from "../../operator/trainingrun/build.js";
import { validateRun } from "../../operator/validate.js";
import { poolManifest, runManifest } from "../fixtures/runs.js";

type K = KubernetesObject & Record<string, any>;
const yaml = (...docs: object[]) => docs.map((d) => `---\n${stringify(d)}`).join("");
const kinds = (objs: K[]) => objs.map((o) => `${o.kind}/${o.metadata!.name}`);

describe("operator: l0 render", () => {
  it("renders an inline-worker run as the reconcilers would create it, in apply order", () => {
    const objs = renderManifest(yaml(runManifest("qa")), "run.yaml") as K[];
    expect(kinds(objs)).to.deep.equal([
      "Secret/qa-token",
      "ConfigMap/qa-config",
      "Service/qa-trainer",
      "Service/qa-hub",
      "NetworkPolicy/qa-trainer",
      "Job/qa-trainer-0",
      "AgentWorkerPool/qa",
      "ServiceAccount/qa-workers",
      "Deployment/qa-workers",
      "NetworkPolicy/qa-workers",
      "PodDisruptionBudget/qa-workers",
    ]);
    const secret = objs[0]!;
    expect(Buffer.from(secret.data.token, "base64").toString()).to.equal(TOKEN_PLACEHOLDER);
  });

  it("uses the operator's own builders on the resolved run (CRD defaults applied)", () => {
    const manifest = runManifest("qa", { trainer: { nodes: 2 } });
    const objs = renderManifest(yaml(manifest), "run.yaml") as K[];
    const valid = validateRun(manifest as never);
    if (!("run" in valid)) throw new Error("fixture must be valid");
    const job = objs.find((o) => o.kind === "Job")!;
    expect(job).to.deep.equal(buildTrainerJob(valid.run, 0, BUILTIN_IMAGES));
    // A default only the CRD states reaches the object (checkpoint.mountPath).
    expect(job.spec.template.spec.containers[0].volumeMounts).to.deep.include({
      name: "checkpoints",
      mountPath: "/checkpoints",
    });
  });

  it("adds the inference tier with spec.inference", () => {
    const run = runManifest("qa", { model: { name: "Qwen/Qwen2.5-0.5B-Instruct" }, inference: {} });
    const objs = renderManifest(yaml(run), "run.yaml") as K[];
    expect(kinds(objs)).to.include.members([
      "Deployment/qa-inference",
      "Service/qa-inference",
      "NetworkPolicy/qa-inference",
    ]);
    // The weights' bulk channel beside its gRPC port: named on the trainer container and the hub
    // Service, on each sidecar, and let in by the NetworkPolicies exactly as the gRPC ports are.
    const find = (kind: string, name: string) =>
      objs.find((o) => o.kind === kind && o.metadata!.name === name)!;
    const trainer = find("Job", "qa-trainer-0").spec.template.spec.containers[0];
    expect(trainer.ports).to.deep.include({ name: "weights-bulk", containerPort: 7073, protocol: "TCP" });
    expect(find("Service", "qa-hub").spec.ports).to.deep.include({
      name: "weights-bulk",
      port: 7073,
      targetPort: 7073,
      protocol: "TCP",
    });
    const sidecar = find("Deployment", "qa-inference").spec.template.spec.containers[1];
    expect(sidecar.ports).to.deep.include({ name: "peers-bulk", containerPort: 7074, protocol: "TCP" });
    const allowed = (np: string, port: number) =>
      (find("NetworkPolicy", np).spec.ingress as { from?: unknown; ports?: { port: number }[] }[]).find((r) =>
        r.ports?.some((p) => p.port === port),
      );
    expect(allowed("qa-trainer", 7073)).to.deep.equal(allowed("qa-trainer", 7071));
    expect(allowed("qa-inference", 7074)).to.deep.equal(allowed("qa-inference", 7072));
  });

  it("renders a referenced pool in the same file against its run, and at zero without it", () => {
    const run = runManifest("qa", { workerPoolRef: { name: "pool" } });
    const pool = { ...poolManifest("pool", { replicas: 3 }), metadata: { name: "pool" } };
    const both = renderManifest(yaml(run, pool), "run.yaml") as K[];
    const deploy = both.find((o) => o.kind === "Deployment" && o.metadata!.name === "pool-workers")!;
    expect(deploy.spec.replicas).to.equal(3);
    const env = deploy.spec.template.spec.containers[0].env.map((e: { name: string }) => e.name);
    expect(env).to.include("L0_WORKER_HUB");
    const alone = renderManifest(yaml(pool), "pool.yaml") as K[];
    expect(alone.find((o) => o.kind === "Deployment")!.spec.replicas).to.equal(0);
  });

  it("puts objects without a namespace into the one given", () => {
    const run = runManifest("qa");
    delete run.metadata.namespace;
    const objs = renderManifest(yaml(run), "run.yaml", { namespace: "team-a" }) as K[];
    expect(new Set(objs.map((o) => o.metadata!.namespace))).to.deep.equal(new Set(["team-a"]));
  });

  const bad: [string, string, RegExp][] = [
    [
      "a schema violation",
      yaml(runManifest("qa", { trainer: { nodes: 0 } })),
      /TrainingRun qa.*spec\.trainer\.nodes/,
    ],
    [
      "a CEL rule",
      yaml({ ...runManifest("qa"), spec: { ...runManifest("qa").spec, workerPoolRef: { name: "p" } } }),
      /exactly one of spec.workers/,
    ],
    [
      "another kind",
      yaml({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" } }),
      /document 1: kind: must be TrainingRun or AgentWorkerPool/,
    ],
    ["no name", yaml({ ...runManifest("qa"), metadata: {} }), /document 1: metadata.name: is required/],
    ["broken YAML", "spec: [", /run.yaml: document 1/],
  ];
  for (const [what, text, error] of bad)
    it(`rejects ${what}, naming the file and field`, () => {
      expect(() => renderManifest(text, "run.yaml")).to.throw(error);
    });

  for (const file of readdirSync("examples").filter((f) => f.endsWith(".yaml")))
    it(`renders the shipped example ${file}`, () => {
      const objs = renderManifest(readFileSync(`examples/${file}`, "utf8"), file) as K[];
      expect(objs.map((o) => o.kind)).to.include("Deployment");
    });

  it("formats multi-document YAML and a JSON List that parse back to the objects", () => {
    const objs = renderManifest(yaml(runManifest("qa")), "run.yaml");
    const docs = parseAllDocuments(formatObjects(objs, "yaml")).map((d) => d.toJSON());
    expect(docs).to.deep.equal(JSON.parse(JSON.stringify(objs)));
    const list = JSON.parse(formatObjects(objs, "json"));
    expect(list.kind).to.equal("List");
    expect(list.items).to.have.length(objs.length);
  });

  it("l0 render prints the objects, and exits 2 naming the field on a bad manifest", function () {
    this.timeout(60_000);
    const ok = spawnSync(
      process.execPath,
      ["bin/l0.js", "render", "-f", "examples/trainingrun.yaml", "-o", "json"],
      {
        encoding: "utf8",
      },
    );
    expect(ok.status, ok.stderr).to.equal(0);
    expect(JSON.parse(ok.stdout).items.map((o: K) => o.kind)).to.include("Job");
    const missing = spawnSync(process.execPath, ["bin/l0.js", "render", "-f", "/nonexistent.yaml"], {
      encoding: "utf8",
    });
    expect(missing.status).to.equal(2);
    expect(missing.stderr).to.match(/nonexistent.yaml: cannot read/);
  });
});
