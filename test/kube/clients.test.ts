// The kubeconfig is usable by clients other than the test's own: over TLS with a certificate
// the kubeconfig trusts, by client-node and by kubectl (client-go) from a file.
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { kubectl } from "./kubectl.js";
import { startKubeServer, type KubeServer } from "./server.js";
import { eventually } from "./testkit.js";

describe("kube server: other clients", () => {
  let kube: KubeServer;
  let dir: string;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", tls: true });
    dir = mkdtempSync(join(tmpdir(), "l0-kubeconfig-"));
  });
  afterEach(async () => {
    await kube.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves HTTPS that client-node verifies against the kubeconfig's CA", async () => {
    expect(kube.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    const kc = new k8s.KubeConfig();
    kc.loadFromString(kube.kubeConfigYaml());
    expect(kc.getCurrentCluster()?.skipTLSVerify).to.not.equal(true);
    const ns = await kc.makeApiClient(k8s.CoreV1Api).listNamespace();
    expect(ns.items.map((n) => n.metadata?.name)).to.include("default");
  });

  it("works with kubectl from a kubeconfig file: create, server-side apply, get, scale, delete", async function () {
    this.timeout(60_000);
    const file = join(dir, "config");
    writeFileSync(file, kube.kubeConfigYaml());
    const run = (args: string[], input?: string) => kubectl(file, join(dir, "cache"), args, input);
    // Manifests go as JSON; kubectl's typed generators (`create configmap x --from-literal`)
    // send protobuf, which this server does not decode (415, README "Not covered").
    const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n";
    expect((await run(["create", "-f", "-"], cm)).out).to.contain("configmap/x created");
    const proto = await run(["create", "configmap", "y", "--from-literal=a=b"]);
    expect(proto.out).to.contain("the body of the request was in an unknown format");
    const tr =
      "apiVersion: l0.dev/v1alpha1\nkind: TrainingRun\nmetadata:\n  name: r\nspec:\n  model: {name: tiny}\n  dataset: {path: /d}\n  workers: {}\n";
    const applied = await run(["apply", "--server-side", "-f", "-"], tr);
    expect(applied.out).to.contain("trainingrun.l0.dev/r serverside-applied");
    expect(
      kube.get("l0.dev/v1alpha1", "TrainingRun", "default", "r")!.metadata.managedFields[0].manager,
    ).to.equal("kubectl");
    const web =
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: nginx, image: 'nginx:1'}]}\n";
    expect((await run(["apply", "-f", "-"], web)).out).to.contain("deployment.apps/web created");
    await eventually(() => kube.sim.readyPods().length === 2, "2 ready pods");
    expect((await run(["scale", "deploy/web", "--replicas=1"])).out).to.contain("scaled");
    const got = await run(["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
    expect(got.out).to.equal("1");
    expect((await run(["delete", "deploy", "web"])).out).to.contain('"web" deleted');
    await eventually(() => kube.sim.pods().length === 0, "pods collected");
  });

  it("kubectl explain reads the CRD's schema from /openapi/v3", async function () {
    this.timeout(60_000);
    const file = join(dir, "config");
    writeFileSync(file, kube.kubeConfigYaml());
    const r = await kubectl(file, join(dir, "cache"), ["explain", "trainingrun.spec"]);
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.contain("KIND:       TrainingRun");
    expect(r.out).to.match(/dataset\s+<Object> -required-/);
    expect(r.out).to.contain("Questions with verifiable answers");
    const pool = await kubectl(file, join(dir, "cache"), ["explain", "agentworkerpool.spec.sandbox.mode"]);
    expect(pool.out).to.contain("ENUM:");
  });

  it("kubectl apply --validate=strict takes examples/ and refuses an unknown field", async function () {
    this.timeout(60_000);
    const file = join(dir, "config");
    writeFileSync(file, kube.kubeConfigYaml());
    const run = (args: string[], input?: string) => kubectl(file, join(dir, "cache"), args, input);
    const first = await run(["apply", "--validate=strict", "-f", "examples/"]);
    expect(first.code, first.out).to.equal(0);
    expect(first.out).to.contain("trainingrun.l0.dev/qa-7b created");
    expect(first.out).to.contain("agentworkerpool.l0.dev/math-pool created");
    const again = await run(["apply", "--validate=strict", "-f", "examples/"]);
    expect(again.out).to.contain("trainingrun.l0.dev/qa-7b unchanged");
    const typo =
      "apiVersion: l0.dev/v1alpha1\nkind: TrainingRun\nmetadata: {name: typo}\nspec:\n  model: {name: tiny, revison: main}\n  dataset: {path: /d}\n  workers: {}\n";
    const bad = await run(["apply", "--validate=strict", "-f", "-"], typo);
    expect(bad.code).to.not.equal(0);
    expect(bad.out).to.contain('unknown field "spec.model.revison"');
    const cm = await run(
      ["apply", "--validate=strict", "-f", "-"],
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndat: {}\n",
    );
    expect(cm.out).to.contain('unknown field "dat"');
  });
});
