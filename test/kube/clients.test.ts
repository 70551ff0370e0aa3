// The kubeconfig is usable by clients other than the test's own: over TLS with a certificate
// the kubeconfig trusts, by client-node and by kubectl (client-go) from a file.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { startKubeServer, type KubeServer } from "./server.js";
import { eventually } from "./testkit.js";

function kubectl(kubeconfig: string, args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      "kubectl",
      ["--kubeconfig", kubeconfig, ...args],
      { timeout: 20_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

const hasKubectl = (): Promise<boolean> =>
  new Promise((r) => execFile("kubectl", ["version", "--client"], (err) => r(!err)));

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
    if (!(await hasKubectl())) this.skip(); // kubectl is optional on CI machines
    this.timeout(60_000);
    const file = join(dir, "config");
    writeFileSync(file, kube.kubeConfigYaml());
    const run = (args: string[], input?: string) => kubectl(file, args, input);
    expect((await run(["create", "configmap", "x", "--from-literal=a=b"])).out).to.contain(
      "configmap/x created",
    );
    const tr =
      "apiVersion: l0.dev/v1alpha1\nkind: TrainingRun\nmetadata:\n  name: r\nspec:\n  model: {name: tiny}\n  dataset: {path: /d}\n  workers: {}\n";
    const applied = await run(["apply", "--server-side", "--validate=false", "-f", "-"], tr);
    expect(applied.out).to.contain("trainingrun.l0.dev/r serverside-applied");
    expect(
      kube.get("l0.dev/v1alpha1", "TrainingRun", "default", "r")!.metadata.managedFields[0].manager,
    ).to.equal("kubectl");
    expect((await run(["create", "deployment", "web", "--image=nginx:1", "--replicas=2"])).code).to.equal(0);
    await eventually(() => kube.sim.readyPods().length === 2, "2 ready pods");
    expect((await run(["scale", "deploy/web", "--replicas=1"])).out).to.contain("scaled");
    const got = await run(["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
    expect(got.out).to.equal("1");
    expect((await run(["delete", "deploy", "web"])).out).to.contain('"web" deleted');
    await eventually(() => kube.sim.pods().length === 0, "pods collected");
  });
});
