// What a real cluster showed about the operator's manners: `kubectl delete --cascade=orphan`
// leaked the run token Secret, writes carried field manager `unknown`, a harmless 404 was logged
// as an error, `kubectl scale` on a run-owned pool was undone silently, and every Secret and
// ConfigMap of the cluster was cached.
import { expect } from "chai";
import { Writable } from "node:stream";
import { X509Certificate } from "node:crypto";
import { createLogger } from "../../lib/log.js";
import { tlsFromSecretData } from "../../lib/tls.js";
import { OPERATOR_RULES, allows } from "../../operator/rbac.js";
import { type Env, TR, AWP, cond, eventually, getPool, getRun, rbacOf, run, startEnv } from "./harness.js";

const CHILDREN: [string, string, string][] = [
  ["v1", "Secret", "a-token"],
  ["v1", "ConfigMap", "a-config"],
  ["v1", "Service", "a-trainer"],
  ["v1", "Service", "a-hub"],
  ["networking.k8s.io/v1", "NetworkPolicy", "a-trainer"],
  ["batch/v1", "Job", "a-trainer-0"],
  ["l0.dev/v1alpha1", "AgentWorkerPool", "a"],
];
const converged = (env: Env) =>
  getRun(env, "a")?.status?.phase === "Initializing" &&
  env.kube.get("apps/v1", "Deployment", "default", "a-workers") &&
  getPool(env, "a")?.status?.observedGeneration === 1;

describe("operator: manners on a real cluster", function () {
  this.timeout(30_000);
  let env: Env;
  beforeEach(async () => {
    env = await startEnv({ kubelet: "ready", jobPods: "manual" });
  });
  afterEach(() => env.stop());

  it("kubectl delete --cascade=orphan leaves nothing of the run behind (token Secret first of all)", async () => {
    const op = await env.startOperator();
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(() => converged(env), "converged");
    // The garbage collector orphans the children before the finalizer runs: the worst order.
    await op.stop();
    await env.custom.deleteNamespacedCustomObject({ ...TR, name: "a", propagationPolicy: "Orphan" });
    await env.kube.settled();
    expect(env.kube.get("v1", "Secret", "default", "a-token")!.metadata.ownerReferences).to.equal(undefined);
    await env.startOperator();
    await eventually(() => !getRun(env, "a"), "run gone");
    await env.kube.settled();
    for (const [v, k, n] of CHILDREN) expect(env.kube.get(v, k, "default", n), `${k} ${n}`).to.not.exist;
    await eventually(() => !env.kube.get("apps/v1", "Deployment", "default", "a-workers"), "workers gone");
  });

  it("every write carries the operator's field manager, never `unknown`", async () => {
    await env.startOperator();
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(() => converged(env), "converged");
    for (const [v, k, n] of [
      ...CHILDREN,
      ["apps/v1", "Deployment", "a-workers"] as [string, string, string],
    ]) {
      const managers = (env.kube.get(v, k, "default", n)!.metadata.managedFields ?? []).map(
        (m: { manager: string }) => m.manager,
      );
      expect(managers, `${k} ${n}`).to.include("l0-operator");
      expect(managers, `${k} ${n}`).to.not.include("unknown");
    }
    const status = getRun(env, "a")!.metadata.managedFields.find(
      (m: { subresource?: string }) => m.subresource === "status",
    );
    expect(status.manager).to.equal("l0-operator");
  });

  it("a 404 from an object deleted meanwhile is a quiet requeue, not an error log", async () => {
    const lines: { level: string; message: string }[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _e, done) {
        lines.push(JSON.parse(chunk.toString()) as { level: string; message: string });
        done();
      },
    });
    env.kube.faults.fail({ verb: "update", resource: "trainingruns", subresource: "status" }, 404, 2);
    await env.startOperator({
      logger: createLogger({ component: "operator", level: "debug", format: "json", stream }),
    });
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(() => converged(env), "converged after the 404s");
    expect(lines.filter((l) => l.message === "gone meanwhile, requeueing")).to.have.length(2);
    expect(lines.filter((l) => l.level === "error").map((l) => l.message)).to.deep.equal([]);
  });

  it("kubectl scale on a run-owned pool is put back, and the run says who was overridden and what to do", async () => {
    await env.startOperator();
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(() => converged(env), "converged");
    await env.custom.replaceNamespacedCustomObjectScale({
      ...AWP,
      name: "a",
      fieldManager: "kubectl",
      body: {
        apiVersion: "autoscaling/v1",
        kind: "Scale",
        metadata: { name: "a", namespace: "default" },
        spec: { replicas: 5 },
      },
    });
    await eventually(() => getPool(env, "a")?.spec.replicas === 2, "put back");
    const warned = await eventually(
      () =>
        env.kube
          .list("v1", "Event", "default")
          .find((e) => e.involvedObject.kind === "TrainingRun" && e.reason === "ScaleReverted"),
      "ScaleReverted event",
    );
    expect(warned.message).to.equal(
      "AgentWorkerPool a was scaled to 5 by kubectl; a run-owned pool follows the run, so it goes back to 2: change spec.workers.replicas of the run, or enable spec.workers.autoscaling",
    );
    expect(cond(getRun(env, "a"), "Failed").status).to.equal("False");
  });

  it("issues the run's TLS certificates once, and adds them to a token Secret from before TLS, keeping its token", async () => {
    const op = await env.startOperator();
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(() => converged(env), "converged");
    const first = env.kube.get("v1", "Secret", "default", "a-token")!;
    const tls = tlsFromSecretData(first.data)!;
    expect(tls, "ca.crt, tls.crt and tls.key").to.not.equal(undefined);
    expect(new X509Certificate(tls.cert).checkHost("a-hub.default.svc")).to.equal("a-hub.default.svc");
    // A Secret as an operator before TLS left it: the token alone.
    await op.stop();
    await env.core.replaceNamespacedSecret({
      namespace: "default",
      name: "a-token",
      body: { ...first, data: { token: first.data.token } },
    });
    const op2 = await env.startOperator(); // its first list reconciles the run
    const again = await eventually(() => {
      const s = env.kube.get("v1", "Secret", "default", "a-token")!;
      return tlsFromSecretData(s.data) && s;
    }, "TLS added");
    expect(again.data.token, "the token is kept").to.equal(first.data.token);
    expect(again.data["ca.crt"], "new material").to.not.equal(first.data["ca.crt"]);
    await eventually(
      () => env.kube.list("v1", "Event", "default").some((e) => e.reason === "TLSIssued"),
      "TLSIssued event",
    );
    // Every call it made is allowed by the chart's least-privilege rules (the patch included).
    for (const r of env.requests) {
      const need = rbacOf(r.method, r.path);
      expect(allows(OPERATOR_RULES, need.group, need.resource, need.verb), `${r.method} ${r.path}`).to.equal(
        true,
      );
    }
    expect(
      env.requests.some((r) => r.method === "PATCH" && r.path.includes("/secrets/a-token")),
      "patched",
    ).to.equal(true);
    // Issued once: a later start's reconciles keep it.
    await op2.stop();
    const op3 = await env.startOperator();
    await eventually(() => op3.informer("Secret").get("default", "a-token"), "Secret cached again");
    await env.kube.settled();
    expect(env.kube.get("v1", "Secret", "default", "a-token")!.data["ca.crt"]).to.equal(again.data["ca.crt"]);
  });

  it("caches only the Secrets and ConfigMaps it created; a same-named foreign Secret is NameTaken", async () => {
    await env.core.createNamespacedSecret({
      namespace: "default",
      body: { metadata: { name: "a-token" }, stringData: { token: "not the operator's" } },
    });
    await env.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "unrelated" } },
    });
    const m = await env.startOperator();
    await env.custom.createNamespacedCustomObject({ ...TR, body: run("a") });
    await eventually(
      () => env.kube.list("v1", "Event", "default").some((e) => e.reason === "NameTaken"),
      "NameTaken for the foreign Secret",
    );
    await eventually(() => m.informer("ConfigMap").get("default", "a-config"), "own ConfigMap cached");
    expect(m.informer("ConfigMap").get("default", "unrelated"), "foreign ConfigMap not cached").to.equal(
      undefined,
    );
    expect(m.informer("Secret").get("default", "a-token"), "foreign Secret not cached").to.equal(undefined);
    // Lists and watches (the informers); single GETs by name are the create-conflict path.
    const reads = env.requests.filter(
      (r) => ["GET", "WATCH"].includes(r.method) && /\/(secrets|configmaps)\?/.test(r.path),
    );
    expect(reads.length).to.be.greaterThan(0);
    for (const r of reads)
      expect(r.path, r.path).to.contain("labelSelector=app.kubernetes.io%2Fmanaged-by%3Dl0-operator");
    expect(env.kube.get("v1", "Secret", "default", "a-token")!.data.token).to.equal(
      Buffer.from("not the operator's").toString("base64"),
    );
  });
});
