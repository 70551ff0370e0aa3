// The chart's files: generated ones in sync with their sources (CRDs, sync-chart.mjs), the
// kubeVersion floor, values.yaml's comments and keys, and NOTES.txt.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHART, NAMESPACE, ROOT, find, helm, render, runHelm, validate } from "./helm.js";
import { FULLNAME } from "./operator-chart.js";

describe("chart: l0-operator", function () {
  this.timeout(60_000);
  before(() => helm());
  describe("generated files are in sync with their sources", () => {
    it("scripts/sync-chart.mjs --check finds nothing to update", () => {
      const r = spawnSync(process.execPath, [join(ROOT, "scripts/sync-chart.mjs"), "--check"], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(r.status, r.stderr).to.equal(0);
    });

    it("the chart's CRDs are byte-identical to crds/ and valid CustomResourceDefinitions", async () => {
      const top = readdirSync(join(ROOT, "crds")).filter((f) => f.endsWith(".yaml"));
      expect(readdirSync(join(CHART, "crds")).sort()).to.deep.equal(top.sort());
      for (const f of top) {
        expect(readFileSync(join(CHART, "crds", f), "utf8"), f).to.equal(
          readFileSync(join(ROOT, "crds", f), "utf8"),
        );
      }
      const crds = find(render(["--include-crds"]), "CustomResourceDefinition");
      expect(crds).to.have.length(top.length);
      for (const c of crds) await validate(c);
    });
  });

  it("refuses clusters older than the chart's kubeVersion (1.27)", () => {
    const r = runHelm(["template", "l0", CHART, "--kube-version", "1.26.5"]);
    expect(r.status).to.not.equal(0);
    expect(r.stderr).to.match(/kubeVersion/i);
    expect(runHelm(["template", "l0", CHART, "--kube-version", "1.27.0"]).status).to.equal(0);
  });

  it("values.yaml has no YAML 1.1 boolean keys and documents every key", () => {
    const text = readFileSync(join(CHART, "values.yaml"), "utf8");
    const lines = text.split("\n");
    lines.forEach((line, i) => {
      const key = /^\s*([A-Za-z0-9_.-]+):/.exec(line)?.[1];
      if (!key) return;
      expect(["y", "n", "yes", "no", "on", "off"], `line ${i + 1}`).not.to.include(key.toLowerCase());
      // A top-level key, or a leaf, is preceded by a comment (its own or its block's).
      if (/^\S/.test(line)) {
        const above = lines
          .slice(0, i)
          .reverse()
          .find((l) => l.trim() !== "");
        expect(above?.trim().startsWith("#"), `values.yaml line ${i + 1} (${key}) has no comment`).to.equal(
          true,
        );
      }
    });
  });

  it("NOTES.txt tells the user how to apply a first TrainingRun and where to look", () => {
    // helm template does not render NOTES.txt; render a copy under another name (shown by --debug).
    const dir = mkdtempSync(join(tmpdir(), "l0-notes-"));
    try {
      cpSync(CHART, join(dir, "c"), { recursive: true });
      renameSync(join(dir, "c/templates/NOTES.txt"), join(dir, "c/templates/notes.txt"));
      const r = runHelm([
        "template",
        "l0",
        join(dir, "c"),
        "-n",
        NAMESPACE,
        "--debug",
        "-s",
        "templates/notes.txt",
      ]);
      const text = r.stdout + r.stderr;
      expect(text).to.include("kubectl apply -n <namespace> -f examples/trainingrun.yaml");
      expect(text).to.include("--for=condition=Complete");
      expect(text).to.include(`rollout status deployment/${FULLNAME}`);
      expect(text).to.match(/does not serve monitoring\.coreos\.com\/v1/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
