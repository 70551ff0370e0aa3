// crds.enabled: the CRDs rendered from templates (upgraded by `helm upgrade`, kept on uninstall)
// are the chart's crds/ files plus the keep annotation and the chart's labels, and only when asked.
import { expect } from "chai";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { CHART, ROOT, type K8sObject, find, helm, render, runHelm, validate } from "./helm.js";

const ON = ["--set", "crds.enabled=true"];
const CRD = "CustomResourceDefinition";
const FROM_TEMPLATES = "# Source: l0-operator/templates/crds.yaml";

/** The chart's crds/ files (byte-identical to crds/ at the root: chart-files.test.ts checks it), parsed. */
const chartCrds = (): K8sObject[] =>
  readdirSync(join(CHART, "crds"))
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => parse(readFileSync(join(CHART, "crds", f), "utf8")) as K8sObject);

/** A rendered CRD without what the template adds: the keep annotation and the chart's labels. */
function withoutChartAdditions(o: K8sObject): K8sObject {
  const { annotations, labels, ...meta } = o.metadata as K8sObject["metadata"] & {
    annotations?: Record<string, string>;
  };
  const { "helm.sh/resource-policy": _keep, ...otherAnnotations } = annotations ?? {};
  const chartLabel = (k: string) => k.startsWith("app.kubernetes.io/") || k === "helm.sh/chart";
  const otherLabels = Object.fromEntries(Object.entries(labels ?? {}).filter(([k]) => !chartLabel(k)));
  return {
    ...o,
    metadata: {
      ...meta,
      ...(Object.keys(otherAnnotations).length ? { annotations: otherAnnotations } : {}),
      ...(Object.keys(otherLabels).length ? { labels: otherLabels } : {}),
    },
  };
}

describe("chart: CRDs from templates (crds.enabled)", function () {
  this.timeout(60_000);
  before(() => helm());

  it("default values render no CRD templates; crds/ stays the way CRDs are installed", () => {
    expect(find(render(), CRD)).to.have.length(0);
    const r = runHelm(["template", "l0", CHART, "--include-crds"]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).not.to.include(FROM_TEMPLATES);
    expect(find(render(["--include-crds"]), CRD)).to.have.length(chartCrds().length);
  });

  it("renders each crds/ CRD once, object for object, plus the keep annotation and the chart's labels", async () => {
    const source = chartCrds();
    const rendered = find(render(ON), CRD);
    expect(rendered.map((o) => o.metadata.name).sort()).to.deep.equal(
      source.map((o) => o.metadata.name).sort(),
    );
    for (const o of rendered) {
      const want = source.find((s) => s.metadata.name === o.metadata.name)!;
      expect(withoutChartAdditions(o), o.metadata.name).to.deep.equal(want);
      expect(o.metadata.annotations, o.metadata.name).to.include({ "helm.sh/resource-policy": "keep" });
      expect(o.metadata.labels, o.metadata.name).to.include({
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/part-of": "l0",
      });
      await validate(o);
    }
  });

  it("reads the chart's crds/ files, not a copy: a changed file changes the rendered CRD", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-crds-"));
    try {
      cpSync(CHART, join(dir, "c"), { recursive: true });
      const file = join(dir, "c/crds/l0.dev_trainingruns.yaml");
      writeFileSync(file, readFileSync(file, "utf8").replace("kind: TrainingRun", "kind: TrainingRunX"));
      const crd = find(render(ON, join(dir, "c")), CRD).find(
        (o) => o.metadata.name === "trainingruns.l0.dev",
      );
      expect((crd?.spec as { names: { kind: string } }).names.kind).to.equal("TrainingRunX");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("helm lint --strict and helm template pass with it on, global values, pull secrets and commonLabels", () => {
    const values = [
      ...ON,
      "--set",
      "global.imageRegistry=reg.example.com,commonLabels.team=ml,imagePullSecrets[0].name=regcred",
    ];
    const lint = runHelm(["lint", "--strict", CHART, ...values]);
    expect(lint.status, lint.stdout + lint.stderr).to.equal(0);
    const objs = render(values);
    expect(find(objs, CRD)).to.have.length(chartCrds().length);
    for (const o of objs)
      expect(o.metadata.labels, `${o.kind} ${o.metadata.name}`).to.include({ team: "ml" });
  });

  it("would create each CRD twice without --skip-crds, which the install docs therefore pass", () => {
    // `helm template --include-crds` shows what `helm install` creates when --skip-crds is left out.
    const names = find(render([...ON, "--include-crds"]), CRD).map((o) => o.metadata.name);
    for (const c of chartCrds())
      expect(
        names.filter((n) => n === c.metadata.name),
        c.metadata.name,
      ).to.have.length(2);
    const docs = readFileSync(join(ROOT, "docs/install.md"), "utf8");
    expect(docs).to.match(/helm install [^\n]*--skip-crds[^\n]*--set crds\.enabled=true/);
  });

  it("values.schema.json rejects unknown crds keys", () => {
    const r = runHelm(["template", "l0", CHART, "--set", "crds.install=true"]);
    expect(r.status).to.not.equal(0);
    expect(r.stderr).to.match(/crds/);
  });
});
