// The CRDs as an API: every example passes the schema, the inline workers schema stays in step with
// AgentWorkerPool's spec, and the fields kubectl and the autoscaler rely on are there.
import { readFileSync, readdirSync } from "node:fs";
import { expect } from "chai";
import { parseAllDocuments } from "yaml";
import { createSchemaValidator, readCrds } from "../../lib/crd-schema.js";
import { crdCauses } from "../kube/crd-admit.js";

const crds = readCrds("crds");
const validator = createSchemaValidator(crds, { rejectUnknown: true });
const byKind = Object.fromEntries(crds.map((c) => [c.kind, c]));
const version = (kind: string) => (byKind[kind]!.crd as any).spec.versions[0];
const specProps = (kind: string) => version(kind).schema.openAPIV3Schema.properties.spec.properties;

describe("operator: CRDs and examples", () => {
  const files = readdirSync("examples").filter((f) => /\.ya?ml$/.test(f));
  it("has examples", () => expect(files.length).to.be.greaterThan(2));
  for (const f of files) {
    it(`examples/${f} passes the schema`, () => {
      for (const doc of parseAllDocuments(readFileSync(`examples/${f}`, "utf8"))) {
        const obj = doc.toJS() as { kind: string; spec: Record<string, unknown> };
        const { violations } = validator.validate(obj.kind, obj);
        expect(violations, `${f} ${obj.kind}`).to.deep.equal([]);
        if (obj.kind === "TrainingRun" && !f.startsWith("tiny-qa"))
          expect(
            !!obj.spec.workers !== !!obj.spec.workerPoolRef,
            `${f}: exactly one of workers/workerPoolRef`,
          ).to.equal(true);
      }
    });
  }

  it("keeps TrainingRun.spec.workers in step with AgentWorkerPool.spec (minus hubRef)", () => {
    // replicas differs only in its description (who sets it), so it is compared by type.
    const { hubRef: _h, replicas: pr, ...pool } = specProps("AgentWorkerPool");
    const { replicas: ir, ...inline } = specProps("TrainingRun").workers.properties;
    expect(inline).to.deep.equal(pool);
    expect(ir.type).to.equal(pr.type);
  });

  it("gives the image fields the operator defaults no schema default", () => {
    // A schema default would be stored in every object and pin it to that version, so the
    // operator's L0_OPERATOR_DEFAULT_*_IMAGE would never apply.
    const run = specProps("TrainingRun");
    for (const [where, field] of [
      ["AgentWorkerPool.spec.image", specProps("AgentWorkerPool").image],
      ["TrainingRun.spec.workers.image", run.workers.properties.image],
      ["TrainingRun.spec.trainer.image", run.trainer.properties.image],
      ["TrainingRun.spec.inference.sidecarImage", run.inference.properties.sidecarImage],
    ])
      expect(field, where).to.not.have.property("default");
  });

  it("has status and scale subresources, printer columns, short names and the l0 category", () => {
    const run = version("TrainingRun");
    const pool = version("AgentWorkerPool");
    expect(run.subresources).to.have.property("status");
    expect(pool.subresources.scale).to.deep.equal({
      specReplicasPath: ".spec.replicas",
      statusReplicasPath: ".status.replicas",
      labelSelectorPath: ".status.selector",
    });
    expect(run.additionalPrinterColumns.map((c: any) => c.name)).to.include.members([
      "Phase",
      "Step",
      "Reward",
      "Workers",
      "Age",
    ]);
    expect(pool.additionalPrinterColumns.map((c: any) => c.name)).to.include.members([
      "Desired",
      "Ready",
      "Backlog",
      "Age",
    ]);
    for (const k of ["TrainingRun", "AgentWorkerPool"]) {
      const names = (byKind[k]!.crd as any).spec.names;
      expect(names.categories).to.include("l0");
      expect(names.shortNames).to.have.length.greaterThan(0);
    }
  });

  it("states the cross-field rules as CEL", () => {
    const run = version("TrainingRun").schema.openAPIV3Schema.properties.spec;
    expect(run["x-kubernetes-validations"][0].rule).to.equal("has(self.workers) != has(self.workerPoolRef)");
    const auto = specProps("AgentWorkerPool").autoscaling;
    expect(auto["x-kubernetes-validations"][0].rule).to.equal(
      "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
    );
  });

  it("installs on a real API server: every default passes its node's schema and rules as written", () => {
    for (const c of crds) expect(crdCauses(c.crd), c.kind).to.deep.equal([]);
  });

  it("enforces the cross-field rules on resources, as the API server and l0 local both do", () => {
    const run = parseAllDocuments(readFileSync("examples/trainingrun.yaml", "utf8"))
      .map((d) => d.toJS())
      .find((o) => o.kind === "TrainingRun");
    run.spec.workers.autoscaling = { minReplicas: 5, maxReplicas: 2 };
    run.spec.workers.sandbox = { mode: "runtimeClass" };
    const { violations } = validator.validate("TrainingRun", run);
    expect(violations).to.deep.equal([
      {
        field: "spec.workers.sandbox.runtimeClassName",
        description: "is required when mode is runtimeClass",
      },
      {
        field: "spec.workers.autoscaling.minReplicas",
        description: "must be <= maxReplicas",
      },
    ]);
  });

  it("describes every field (kubectl explain teaches the API)", () => {
    const missing: string[] = [];
    const walk = (s: any, path: string) => {
      if (!s || typeof s !== "object") return;
      if (path && !s.description && !path.endsWith("[]") && !/\.(apiVersion|kind|metadata)$/.test(path))
        missing.push(path);
      for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, `${path}.${k}`);
      if (s.items) walk(s.items, `${path}[]`);
    };
    for (const k of ["TrainingRun", "AgentWorkerPool"]) walk(version(k).schema.openAPIV3Schema, k);
    expect(missing).to.deep.equal([]);
  });

  it("applies the defaults the operator and the programs rely on", () => {
    const { value, violations } = validator.validate("AgentWorkerPool", {
      apiVersion: "l0.dev/v1alpha1",
      kind: "AgentWorkerPool",
      metadata: { name: "p" },
      spec: { hubRef: { name: "r" } },
    });
    expect(violations).to.deep.equal([]);
    const spec = (value as any).spec;
    expect(spec.sandbox).to.include({ mode: "bwrap", cpuSecondsPerEpisode: 60, memoryMiB: 1024 });
    expect(spec.autoscaling).to.include({
      enabled: false,
      minReplicas: 1,
      maxReplicas: 10,
      targetBacklogPerWorker: 8,
    });
    expect(spec.episodesPerWorker).to.equal(8);
  });
});
