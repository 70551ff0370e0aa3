// The engine PodMonitor against the operator's real builders: it selects exactly the inference pods
// of a rendered run (vLLM and SGLang), scrapes a container port that exists on them, at the path the
// sidecar relays the engine's metrics on, through a port the inference NetworkPolicy opens.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ENGINE_METRICS_PATH } from "../../images/inference/engine-metrics.js";
import { ENGINE } from "../../monitoring/dashboard.js";
import { renderManifest } from "../../operator/render.js";
import { MONITORING_APIS, ROOT, type K8sObject, find, helm, one, render } from "./helm.js";

const FULLNAME = "l0-l0-operator";
const EXAMPLE = join(ROOT, "examples/qwen2.5-7b.yaml");

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}
interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: { containers: { name: string; ports?: { name?: string; containerPort: number }[] }[] };
}
type EngineMonitor = {
  selector: Selector;
  podMetricsEndpoints: {
    port: string;
    path: string;
    relabelings: { targetLabel: string; replacement?: string }[];
  }[];
};

/** Whether a label selector (matchLabels and the In/NotIn/Exists operators) selects `labels`. */
function selects(sel: Selector, labels: Record<string, string>): boolean {
  const byLabel = Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpr = (sel.matchExpressions ?? []).every((e) => {
    const has = e.key in labels;
    if (e.operator === "In") return has && e.values!.includes(labels[e.key]!);
    if (e.operator === "NotIn") return !has || !e.values!.includes(labels[e.key]!);
    if (e.operator === "Exists") return has;
    if (e.operator === "DoesNotExist") return !has;
    throw new Error(`unknown selector operator ${e.operator}`);
  });
  return byLabel && byExpr;
}

/** The pod templates of every Deployment and Job the operator renders for the example run. */
function podTemplates(engine: "vllm" | "sglang"): { owner: string; tpl: PodTemplate }[] {
  let text = readFileSync(EXAMPLE, "utf8");
  if (engine === "sglang")
    text = text.replace("engine: vllm", "engine: sglang\n    image: lmsysorg/sglang:v0.5");
  expect(text, "the example's engine").to.include(`engine: ${engine}`);
  const objs = renderManifest(text, EXAMPLE) as unknown as K8sObject[];
  return objs
    .filter((o) => o.kind === "Deployment" || o.kind === "Job")
    .map((o) => ({
      owner: `${o.kind} ${o.metadata.name}`,
      tpl: (o.spec as { template: PodTemplate }).template,
    }));
}

describe("chart: engine PodMonitor against the operator's inference pods", function () {
  this.timeout(60_000);
  let pm: EngineMonitor;
  before(() => {
    helm();
    pm = one(render(MONITORING_APIS), "PodMonitor", `${FULLNAME}-engines`).spec as EngineMonitor;
  });

  for (const engine of ["vllm", "sglang"] as const) {
    it(`${engine}: selects the inference pods and no other pod of the run`, () => {
      const pods = podTemplates(engine);
      const selected = pods.filter((p) => selects(pm.selector, p.tpl.metadata.labels)).map((p) => p.owner);
      expect(selected).to.deep.equal(["Deployment qwen7b-qa-inference"]);
      expect(pods.length, "trainer, inference and workers were rendered").to.be.at.least(3);
    });

    it(`${engine}: scrapes a named port of the inference pod, at the sidecar's relay path`, () => {
      const inference = podTemplates(engine).find((p) => p.owner === "Deployment qwen7b-qa-inference")!;
      const ep = pm.podMetricsEndpoints[0]!;
      const owners = inference.tpl.spec.containers.filter((c) =>
        (c.ports ?? []).some((p) => p.name === ep.port),
      );
      expect(
        owners.map((c) => c.name),
        `containers with port "${ep.port}"`,
      ).to.deep.equal(["weight-sync"]);
      expect(ep.path).to.equal(ENGINE_METRICS_PATH);
    });
  }

  it("the inference NetworkPolicy lets any scraper reach that port", () => {
    const objs = renderManifest(readFileSync(EXAMPLE, "utf8"), EXAMPLE) as unknown as K8sObject[];
    const np = find(objs, "NetworkPolicy").find((o) => o.metadata.name === "qwen7b-qa-inference")!;
    const deploy = one(objs, "Deployment", "qwen7b-qa-inference").spec as { template: PodTemplate };
    const port = deploy.template.spec.containers
      .flatMap((c) => c.ports ?? [])
      .find((p) => p.name === pm.podMetricsEndpoints[0]!.port)!.containerPort;
    const ingress = (np.spec as { ingress: { from?: unknown[]; ports: { port: number }[] }[] }).ingress;
    expect(ingress.some((r) => r.from === undefined && r.ports.some((p) => p.port === port))).to.equal(true);
  });

  it("labels the series with the job the dashboard's engine panels read", () => {
    const job = pm.podMetricsEndpoints[0]!.relabelings.find((r) => r.targetLabel === "job")!;
    expect(ENGINE).to.include(`job="${job.replacement}"`);
  });
});
