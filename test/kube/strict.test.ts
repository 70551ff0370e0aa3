// Where a real v1.36 API server is stricter than a permissive model, and the operator depends on
// it: quantities stored canonical, NetworkPolicy CIDRs, ConfigMap/Secret size, label values and
// names, PodDisruptionBudgets. Each case is the request a real server refused (or rewrote).
import { expect } from "chai";
import * as k8s from "@kubernetes/client-node";
import { startKubeServer, type KubeServer } from "./server.js";
import { apiError, clients, type Clients, deployment, job, mergePatch } from "./testkit.js";

describe("kube server: v1.36 strictness of built-in writes", () => {
  let kube: KubeServer;
  let c: Clients;
  let net: k8s.NetworkingV1Api;
  let policy: k8s.PolicyV1Api;
  beforeEach(async () => {
    kube = await startKubeServer({ sim: false });
    c = clients(kube);
    net = c.kc.makeApiClient(k8s.NetworkingV1Api);
    policy = c.kc.makeApiClient(k8s.PolicyV1Api);
  });
  afterEach(() => kube.stop());

  const withResources = (name: string, resources: k8s.V1ResourceRequirements, sizeLimit?: string) => {
    const d = deployment(name);
    const spec = d.spec!.template.spec!;
    spec.containers[0]!.resources = resources;
    if (sizeLimit) spec.volumes = [{ name: "tmp", emptyDir: { sizeLimit } }];
    return d;
  };

  it("stores quantities in canonical form, so an equal value in other words is a no-op", async () => {
    const d = await c.apps.createNamespacedDeployment({
      namespace: "default",
      body: withResources(
        "w",
        { requests: { cpu: "1000m", memory: "2048Mi" }, limits: { memory: "2.5Gi" } },
        "1024Mi",
      ),
    });
    const spec = d.spec!.template.spec!;
    expect(spec.containers[0]!.resources).to.deep.equal({
      requests: { cpu: "1", memory: "2Gi" },
      limits: { memory: "2560Mi" },
    });
    expect(spec.volumes![0]!.emptyDir!.sizeLimit).to.equal("1Gi");
    // The same values as written the first time change nothing (no new resourceVersion)...
    const same = await c.apps.patchNamespacedDeployment(
      {
        name: "w",
        namespace: "default",
        body: {
          spec: {
            template: { spec: { containers: [{ name: "main", resources: { requests: { cpu: "1000m" } } }] } },
          },
        },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
    );
    expect(same.metadata!.resourceVersion).to.equal(d.metadata!.resourceVersion);
    // ...but the client that compares text sees "1" where it wrote "1000m".
    expect(same.spec!.template.spec!.containers[0]!.resources!.requests!.cpu).to.equal("1");
  });

  it("refuses malformed quantities (400) and requests above limits or fractional GPUs (422)", async () => {
    const bad = await apiError(() =>
      c.apps.createNamespacedDeployment({
        namespace: "default",
        body: withResources("a", { limits: { cpu: "1K" } }),
      }),
    );
    expect(bad.code).to.equal(400);
    expect(bad.body.message).to.contain(
      "cannot be handled as a Deployment: unable to parse quantity's suffix",
    );
    const over = await apiError(() =>
      c.apps.createNamespacedDeployment({
        namespace: "default",
        body: withResources("b", { requests: { cpu: "2" }, limits: { cpu: "1" } }),
      }),
    );
    expect(over.code).to.equal(422);
    expect(over.body.details.causes[0]).to.include({
      field: "spec.template.spec.containers[0].resources.requests",
      message: 'Invalid value: "2": must be less than or equal to cpu limit of 1',
    });
    const gpu = await apiError(() =>
      c.apps.createNamespacedDeployment({
        namespace: "default",
        body: withResources("g", { requests: { "nvidia.com/gpu": "1" }, limits: { "nvidia.com/gpu": "2" } }),
      }),
    );
    expect(gpu.body.details.causes[0].message).to.equal(
      'Invalid value: "1": must be equal to nvidia.com/gpu limit of 2',
    );
  });

  it("refuses a NetworkPolicy whose ipBlock is not a valid CIDR, naming the field", async () => {
    const policyWith = (cidr: string, except?: string[]): k8s.V1NetworkPolicy => ({
      metadata: { name: "np" },
      spec: { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr, ...(except ? { except } : {}) } }] }] },
    });
    for (const [cidr, why] of [
      ["10.0.0.0/33", "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"],
      ["203.0.113.7", "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"],
      ["10.0.0.1/8", "must not have bits set beyond the prefix length"],
      ["010.0.0.0/8", "must not have leading 0s in IP or prefix length"],
    ]) {
      const e = await apiError(() =>
        net.createNamespacedNetworkPolicy({ namespace: "default", body: policyWith(cidr!) }),
      );
      expect(e.code, cidr).to.equal(422);
      expect(e.body.details.causes[0]).to.deep.include({
        field: "spec.egress[0].to[0].ipBlock.cidr",
        message: `Invalid value: ${JSON.stringify(cidr)}: ${why}`,
      });
    }
    const ex = await apiError(() =>
      net.createNamespacedNetworkPolicy({
        namespace: "default",
        body: policyWith("10.0.0.0/8", ["192.168.0.0/16"]),
      }),
    );
    expect(ex.body.details.causes[0].message).to.contain("must be a strict subset of `cidr`");
    await net.createNamespacedNetworkPolicy({
      namespace: "default",
      body: policyWith("2001:db8::/64", ["2001:db8::/96"]),
    });
  });

  it("refuses a ConfigMap or Secret holding more than 1 MiB, and accepts exactly 1 MiB", async () => {
    const mib = 1024 * 1024;
    await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "full" }, data: { a: "x".repeat(mib - 1), b: "y" } },
    });
    const cm = await apiError(() =>
      c.core.createNamespacedConfigMap({
        namespace: "default",
        body: { metadata: { name: "over" }, data: { "run.json": "x".repeat(mib), b: "y" } },
      }),
    );
    expect(cm.code).to.equal(422);
    expect(cm.body.message).to.equal(
      'ConfigMap "over" is invalid: []: Too long: may not be more than 1048576 bytes',
    );
    const secret = await apiError(() =>
      c.core.createNamespacedSecret({
        namespace: "default",
        body: { metadata: { name: "s" }, data: { k: Buffer.alloc(mib + 1).toString("base64") } },
      }),
    );
    expect(secret.body.details.causes[0].field).to.equal("[]");
    const key = await apiError(() =>
      c.core.createNamespacedConfigMap({
        namespace: "default",
        body: { metadata: { name: "k" }, data: { "a/b": "1" } },
      }),
    );
    expect(key.body.details.causes[0].field).to.equal("data[a/b]");
  });

  it("validates label values (63 characters, syntax) and names as v1.36 does", async () => {
    const long = "a".repeat(64);
    const label = await apiError(() =>
      c.core.createNamespacedConfigMap({
        namespace: "default",
        body: { metadata: { name: "l", labels: { run: long } } },
      }),
    );
    expect(label.body.details.causes[0]).to.include({
      field: "metadata.labels",
      message: `Invalid value: "${long}": must be no more than 63 characters`,
    });
    const dotted = await apiError(() =>
      c.core.createNamespacedConfigMap({
        namespace: "default",
        body: { metadata: { name: "l", labels: { run: "-x" } } },
      }),
    );
    expect(dotted.body.details.causes[0].message).to.contain("a valid label must be an empty string");
    // A Job's name becomes its pods' job-name label: over 63 characters it cannot be created.
    const longJob = await apiError(() =>
      c.batch.createNamespacedJob({ namespace: "default", body: job(`${"j".repeat(60)}-trainer-0`) }),
    );
    expect(longJob.code).to.equal(422);
    expect(longJob.body.details.causes.map((x: { field: string }) => x.field)).to.include(
      "spec.template.metadata.labels",
    );
    // A Service name is an RFC 1123 label: dots are not allowed, a leading digit is.
    const svc = await apiError(() =>
      c.core.createNamespacedService({
        namespace: "default",
        body: { metadata: { name: "qa.v2-hub" }, spec: { ports: [{ port: 80 }] } },
      }),
    );
    expect(svc.body.details.causes[0].message).to.contain("a lowercase RFC 1123 label");
    await c.core.createNamespacedService({
      namespace: "default",
      body: { metadata: { name: "7b-hub" }, spec: { ports: [{ port: 80 }] } },
    });
  });

  it("validates PodDisruptionBudgets: one of minAvailable/maxUnavailable, valid percentages", async () => {
    const pdb = (spec: k8s.V1PodDisruptionBudgetSpec) =>
      policy.createNamespacedPodDisruptionBudget({
        namespace: "default",
        body: { metadata: { name: "p" }, spec },
      });
    const both = await apiError(() => pdb({ minAvailable: 1, maxUnavailable: "25%", selector: {} }));
    expect(both.body.details.causes[0].message).to.contain(
      "minAvailable and maxUnavailable cannot be both set",
    );
    const pct = await apiError(() => pdb({ maxUnavailable: "25", selector: {} }));
    expect(pct.body.details.causes[0]).to.include({ field: "spec.maxUnavailable" });
    const big = await apiError(() => pdb({ maxUnavailable: "150%", selector: {} }));
    expect(big.body.details.causes[0].message).to.contain("must not be greater than 100%");
    await pdb({ maxUnavailable: "25%", selector: { matchLabels: { a: "b" } } });
    const upd = await apiError(() =>
      policy.patchNamespacedPodDisruptionBudget(
        { name: "p", namespace: "default", body: { spec: { minAvailable: -1 } } },
        mergePatch,
      ),
    );
    expect(upd.code).to.equal(422);
  });
});
