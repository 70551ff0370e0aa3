// CRUD through @kubernetes/client-node: metadata rules, optimistic concurrency, status codes
// and the Status bodies a real API server returns, built-in defaulting and validation.
import { expect } from "chai";
import * as k8s from "@kubernetes/client-node";
import { startKubeServer, type KubeServer } from "./server.js";
import { apiError, clients, type Clients, deployment, mergePatch } from "./testkit.js";

describe("kube server: CRUD", () => {
  let kube: KubeServer;
  let c: Clients;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", sim: false });
    c = clients(kube);
  });
  afterEach(() => kube.stop());

  it("creates with uid, creationTimestamp and a resourceVersion from one global counter", async () => {
    const a = await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "a" }, data: { k: "v" } },
    });
    const b = await c.core.createNamespacedSecret({
      namespace: "default",
      body: { metadata: { name: "b" }, stringData: { t: "x" } },
    });
    expect(a.metadata?.uid).to.match(/^[0-9a-f-]{36}$/);
    expect(a.metadata?.creationTimestamp).to.be.instanceOf(Date);
    expect(Number(b.metadata?.resourceVersion)).to.equal(Number(a.metadata?.resourceVersion) + 1);
    expect(b.data).to.deep.equal({ t: Buffer.from("x").toString("base64") });
    expect(b.stringData).to.equal(undefined);
    expect(b.type).to.equal("Opaque");
    const got = await c.core.readNamespacedConfigMap({ name: "a", namespace: "default" });
    expect(got.data).to.deep.equal({ k: "v" });
    expect(got.kind).to.equal("ConfigMap");
  });

  it("answers 409 AlreadyExists, 404 NotFound and 404 for a missing namespace with proper Status bodies", async () => {
    await c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "a" } } });
    const dup = await apiError(() =>
      c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "a" } } }),
    );
    expect(dup.code).to.equal(409);
    expect(dup.body).to.include({
      kind: "Status",
      status: "Failure",
      reason: "AlreadyExists",
      code: 409,
      message: 'configmaps "a" already exists',
    });
    const missing = await apiError(() =>
      c.apps.readNamespacedDeployment({ name: "nope", namespace: "default" }),
    );
    expect(missing.body).to.deep.include({
      reason: "NotFound",
      message: 'deployments.apps "nope" not found',
      details: { name: "nope", group: "apps", kind: "deployments" },
    });
    const nons = await apiError(() =>
      c.core.createNamespacedConfigMap({ namespace: "ghost", body: { metadata: { name: "a" } } }),
    );
    expect(nons.code).to.equal(404);
    expect(nons.body.message).to.equal('namespaces "ghost" not found');
  });

  it("rejects an update carrying a stale resourceVersion with 409 Conflict, and accepts the fresh one", async () => {
    const a = await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "a" }, data: { n: "1" } },
    });
    const fresh = await c.core.replaceNamespacedConfigMap({
      name: "a",
      namespace: "default",
      body: { ...a, data: { n: "2" } },
    });
    expect(Number(fresh.metadata?.resourceVersion)).to.be.greaterThan(Number(a.metadata?.resourceVersion));
    const stale = await apiError(() =>
      c.core.replaceNamespacedConfigMap({
        name: "a",
        namespace: "default",
        body: { ...a, data: { n: "3" } },
      }),
    );
    expect(stale.code).to.equal(409);
    expect(stale.body.reason).to.equal("Conflict");
    expect(stale.body.message).to.contain("the object has been modified");
    expect((await c.core.readNamespacedConfigMap({ name: "a", namespace: "default" })).data).to.deep.equal({
      n: "2",
    });
  });

  it("keeps the resourceVersion on a no-op update and keeps system fields the client cannot set", async () => {
    const a = await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "a" }, data: { n: "1" } },
    });
    const same = await c.core.replaceNamespacedConfigMap({ name: "a", namespace: "default", body: a });
    expect(same.metadata?.resourceVersion).to.equal(a.metadata?.resourceVersion);
    const forged = await c.core.replaceNamespacedConfigMap({
      name: "a",
      namespace: "default",
      body: {
        ...a,
        metadata: { ...a.metadata, uid: undefined, creationTimestamp: new Date(0) },
        data: { n: "2" },
      },
    });
    expect(forged.metadata?.uid).to.equal(a.metadata?.uid);
    expect(forged.metadata?.creationTimestamp?.getTime()).to.equal(a.metadata?.creationTimestamp?.getTime());
  });

  it("updates without a resourceVersion unconditionally and 404s an update of a missing object", async () => {
    await c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "a" } } });
    const u = await c.core.replaceNamespacedConfigMap({
      name: "a",
      namespace: "default",
      body: { metadata: { name: "a" }, data: { x: "y" } },
    });
    expect(u.data).to.deep.equal({ x: "y" });
    const e = await apiError(() =>
      c.core.replaceNamespacedConfigMap({
        name: "b",
        namespace: "default",
        body: { metadata: { name: "b" } },
      }),
    );
    expect(e.code).to.equal(404);
  });

  it("fills generateName, and rejects a name the kind does not allow with 422 naming the field", async () => {
    const g = await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { generateName: "run-" } },
    });
    expect(g.metadata?.name).to.match(/^run-[a-z0-9]{5}$/);
    // v1.36 validates Service names as RFC 1123 labels: a leading digit is fine, a dot is not.
    await c.core.createNamespacedService({
      namespace: "default",
      body: { metadata: { name: "9svc" }, spec: { ports: [{ port: 80 }] } },
    });
    const bad = await apiError(() =>
      c.core.createNamespacedService({
        namespace: "default",
        body: { metadata: { name: "svc.a" }, spec: { ports: [{ port: 80 }] } },
      }),
    );
    expect(bad.code).to.equal(422);
    expect(bad.body.reason).to.equal("Invalid");
    expect(bad.body.details.causes[0]).to.include({ field: "metadata.name", reason: "FieldValueInvalid" });
    const noname = await apiError(() =>
      c.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: {} } }),
    );
    expect(noname.body.details.causes[0]).to.include({
      field: "metadata.name",
      reason: "FieldValueRequired",
    });
  });

  it("defaults built-in objects as a real server does (so desired-vs-observed diffs behave the same)", async () => {
    const d = await c.apps.createNamespacedDeployment({ namespace: "default", body: deployment("web") });
    expect(d.spec?.strategy).to.deep.equal({
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" },
    });
    expect(d.spec?.revisionHistoryLimit).to.equal(10);
    expect(d.spec?.template.spec?.containers[0]?.imagePullPolicy).to.equal("IfNotPresent");
    expect(d.spec?.template.spec?.restartPolicy).to.equal("Always");
    expect(d.metadata?.generation).to.equal(1);
    const svc = await c.core.createNamespacedService({
      namespace: "default",
      body: { metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ port: 80 }] } },
    });
    expect(svc.spec?.clusterIP).to.match(/^10\.96\./);
    expect(svc.spec?.ports?.[0]).to.include({ protocol: "TCP", targetPort: 80 });
    const headless = await c.core.createNamespacedService({
      namespace: "default",
      body: { metadata: { name: "hub" }, spec: { clusterIP: "None", ports: [{ port: 50051 }] } },
    });
    expect(headless.spec?.clusterIP).to.equal("None");
  });

  it("stores NetworkPolicies (policyTypes defaulted), PDBs and ServiceAccounts; refuses bodies over 3 MiB", async () => {
    const net = c.kc.makeApiClient(k8s.NetworkingV1Api);
    const np = await net.createNamespacedNetworkPolicy({
      namespace: "default",
      body: {
        metadata: { name: "w" },
        spec: { podSelector: { matchLabels: { app: "w" } }, egress: [{ ports: [{ port: 53 }] }] },
      },
    });
    expect(np.spec?.policyTypes).to.deep.equal(["Ingress", "Egress"]);
    expect(np.spec?.egress?.[0]?.ports?.[0]?.protocol).to.equal("TCP");
    const pdb = await c.kc.makeApiClient(k8s.PolicyV1Api).createNamespacedPodDisruptionBudget({
      namespace: "default",
      body: { metadata: { name: "w" }, spec: { maxUnavailable: 1, selector: { matchLabels: { app: "w" } } } },
    });
    expect(pdb.metadata?.generation).to.equal(1);
    const sa = await c.core.createNamespacedServiceAccount({
      namespace: "default",
      body: { metadata: { name: "w" }, automountServiceAccountToken: false },
    });
    expect(sa.automountServiceAccountToken).to.equal(false);
    const big = await fetch(`${kube.url}/api/v1/namespaces/default/configmaps`, {
      method: "POST",
      headers: { Authorization: `Bearer ${kube.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ metadata: { name: "big" }, data: { x: "y".repeat(3.5 * 1024 * 1024) } }),
    });
    expect(big.status).to.equal(413);
  });

  it("validates built-ins: selector must match template labels, containers need an image, Job restartPolicy", async () => {
    const d = deployment("web");
    d.spec!.template.metadata!.labels = { app: "other" };
    const e1 = await apiError(() => c.apps.createNamespacedDeployment({ namespace: "default", body: d }));
    expect(e1.body.details.causes.map((x: any) => x.field)).to.include("spec.template.metadata.labels");
    const e2 = await apiError(() =>
      c.core.createNamespacedPod({
        namespace: "default",
        body: { metadata: { name: "p" }, spec: { containers: [{ name: "c" } as k8s.V1Container] } },
      }),
    );
    expect(e2.body.details.causes[0]).to.include({
      field: "spec.containers[0].image",
      reason: "FieldValueRequired",
    });
    const e3 = await apiError(() =>
      c.batch.createNamespacedJob({
        namespace: "default",
        body: {
          metadata: { name: "j" },
          spec: { template: { spec: { containers: [{ name: "c", image: "i" }] } } },
        },
      }),
    );
    expect(e3.body.details.causes[0]).to.include({
      field: "spec.template.spec.restartPolicy",
      reason: "FieldValueNotSupported",
    });
  });

  it("bumps a Deployment's generation on spec and annotation changes, not on labels", async () => {
    await c.apps.createNamespacedDeployment({ namespace: "default", body: deployment("web") });
    const patch = (body: object) =>
      c.apps.patchNamespacedDeployment({ name: "web", namespace: "default", body }, mergePatch);
    expect((await patch({ metadata: { labels: { extra: "1" } } })).metadata?.generation).to.equal(1);
    expect((await patch({ metadata: { annotations: { note: "x" } } })).metadata?.generation).to.equal(2);
    expect((await patch({ spec: { replicas: 2 } })).metadata?.generation).to.equal(3);
  });

  it("treats Deployment selectors and Job templates as immutable", async () => {
    const d = await c.apps.createNamespacedDeployment({ namespace: "default", body: deployment("web") });
    d.spec!.selector = { matchLabels: { app: "web", extra: "x" } };
    d.spec!.template.metadata!.labels = { app: "web", extra: "x" };
    const e = await apiError(() =>
      c.apps.replaceNamespacedDeployment({ name: "web", namespace: "default", body: d }),
    );
    expect(e.code).to.equal(422);
    expect(e.body.message).to.contain("field is immutable");
  });

  it("generates a Job's selector and pod labels from its uid", async () => {
    const j = await c.batch.createNamespacedJob({
      namespace: "default",
      body: {
        metadata: { name: "train" },
        spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "c", image: "i" }] } } },
      },
    });
    expect(j.spec?.selector?.matchLabels).to.deep.equal({
      "batch.kubernetes.io/controller-uid": j.metadata?.uid,
    });
    expect(j.spec?.template.metadata?.labels).to.include({
      "job-name": "train",
      "batch.kubernetes.io/job-name": "train",
    });
    expect(j.spec).to.include({
      completions: 1,
      parallelism: 1,
      backoffLimit: 6,
      completionMode: "NonIndexed",
    });
  });

  it("forbids adding a finalizer to an object that is being deleted", async () => {
    await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "a", finalizers: ["l0.dev/x"] } },
    });
    await c.core.deleteNamespacedConfigMap({ name: "a", namespace: "default" });
    const cur = await c.core.readNamespacedConfigMap({ name: "a", namespace: "default" });
    cur.metadata!.finalizers = ["l0.dev/x", "l0.dev/y"];
    const e = await apiError(() =>
      c.core.replaceNamespacedConfigMap({ name: "a", namespace: "default", body: cur }),
    );
    expect(e.code).to.equal(422);
    expect(e.body.details.causes[0]).to.include({
      field: "metadata.finalizers",
      reason: "FieldValueForbidden",
    });
  });

  it("requires the bearer token from the kubeconfig (401 without it)", async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: kube.url, skipTLSVerify: true }],
      users: [{ name: "u", token: "wrong" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const e = await apiError(() => kc.makeApiClient(k8s.CoreV1Api).listNamespace());
    expect(e.code).to.equal(401);
    const ok = await c.core.listNamespace();
    expect(ok.items.map((n) => n.metadata?.name)).to.include.members(["default", "kube-system"]);
  });

  it("serves discovery, so KubernetesObjectApi works for built-in and custom kinds", async () => {
    const created = await c.objects.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "via-objects" },
      data: { a: "b" },
    } as k8s.KubernetesObject);
    expect(created.metadata?.namespace).to.equal("default");
    const list = await c.objects.list("l0.dev/v1alpha1", "TrainingRun", "default");
    expect(list.items).to.deep.equal([]);
    const groups = await c.kc.makeApiClient(k8s.ApisApi).getAPIVersions();
    expect(groups.groups.map((g) => g.name)).to.include.members([
      "apps",
      "batch",
      "l0.dev",
      "coordination.k8s.io",
    ]);
  });

  it("writes Leases and Events (core and events.k8s.io) for leader election and recording", async () => {
    const l = await c.coordination.createNamespacedLease({
      namespace: "default",
      body: {
        metadata: { name: "l0-operator" },
        spec: {
          holderIdentity: "a",
          leaseDurationSeconds: 15,
          acquireTime: new k8s.V1MicroTime(),
          renewTime: new k8s.V1MicroTime(),
        },
      },
    });
    l.spec!.holderIdentity = "b";
    const l2 = await c.coordination.replaceNamespacedLease({
      name: "l0-operator",
      namespace: "default",
      body: l,
    });
    expect(l2.spec?.holderIdentity).to.equal("b");
    expect(
      (
        await apiError(() =>
          c.coordination.replaceNamespacedLease({ name: "l0-operator", namespace: "default", body: l }),
        )
      ).code,
    ).to.equal(409);
    await c.core.createNamespacedEvent({
      namespace: "default",
      body: {
        metadata: { generateName: "run." },
        involvedObject: { kind: "TrainingRun", name: "r" },
        reason: "Created",
        message: "m",
        type: "Normal",
      },
    });
    const ev = c.kc.makeApiClient(k8s.EventsV1Api);
    await ev.createNamespacedEvent({
      namespace: "default",
      body: {
        metadata: { generateName: "run." },
        eventTime: new k8s.V1MicroTime(),
        reason: "Created",
        action: "Create",
        reportingController: "l0",
        reportingInstance: "l0-0",
        regarding: { kind: "TrainingRun", name: "r" },
      },
    });
    expect((await c.core.listNamespacedEvent({ namespace: "default" })).items).to.have.length(1);
    const wrongNs = await apiError(() =>
      c.core.createNamespacedEvent({
        namespace: "default",
        body: {
          metadata: { generateName: "x." },
          involvedObject: { kind: "Pod", name: "p", namespace: "other" },
          reason: "R",
          message: "m",
        },
      }),
    );
    expect(wrongNs.body.details.causes[0]).to.include({ field: "involvedObject.namespace" });
    const incomplete = await apiError(() =>
      ev.createNamespacedEvent({
        namespace: "default",
        body: { metadata: { generateName: "x." }, reason: "R" } as any,
      }),
    );
    expect(incomplete.body.details.causes.map((x: any) => x.field)).to.include.members([
      "eventTime",
      "reportingController",
      "action",
    ]);
    expect((await ev.listNamespacedEvent({ namespace: "default" })).items).to.have.length(1);
  });
});
