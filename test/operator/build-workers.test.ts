// Table tests of the AgentWorkerPool's children (no server): the sandboxed worker Deployment, its
// limits, environment and NetworkPolicy, the ServiceAccount and the PodDisruptionBudget.
import { expect } from "chai";
import { makePool, makeRun } from "./objects.js";
import {
  buildNetworkPolicy,
  buildPdb,
  buildServiceAccount,
  buildWorkerDeployment,
  sandboxSecurity,
} from "../../operator/workerpool/build.js";

describe("operator builders: AgentWorkerPool children", () => {
  it("bwrap mode: non-root, no capabilities, read-only root, seccomp/AppArmor Unconfined for user namespaces", () => {
    const d = buildWorkerDeployment(makePool(), undefined, 3);
    const pod = d.spec!.template.spec!;
    expect(d.spec!.replicas).to.equal(3);
    expect(pod.automountServiceAccountToken).to.equal(false);
    expect(pod.securityContext).to.deep.include({ runAsNonRoot: true, runAsUser: 65532 });
    expect(pod.containers[0]!.securityContext).to.deep.include({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "Unconfined" },
      // bwrap mounts a fresh /proc: the runtime's masked one forbids it; only in a user namespace.
      procMount: "Unmasked",
    });
    expect(pod.hostUsers).to.equal(false);
    expect(pod.runtimeClassName).to.equal(undefined);
  });

  it("runtimeClass mode: RuntimeDefault profiles, the host's users, a masked /proc and the RuntimeClass", () => {
    const p = makePool({ sandbox: { mode: "runtimeClass", runtimeClassName: "gvisor" } });
    expect(sandboxSecurity(p).container.seccompProfile).to.deep.equal({ type: "RuntimeDefault" });
    const pod = buildWorkerDeployment(p, undefined, 1).spec!.template.spec!;
    expect(pod.runtimeClassName).to.equal("gvisor");
    expect(pod.hostUsers).to.equal(undefined);
    expect(pod.containers[0]!.securityContext!.procMount).to.equal(undefined);
  });

  // Strict mode needs a writable pids cgroup, which these non-root pods without capabilities lack:
  // a worker told `strict` exits at start. Weak mode (bwrap + rlimits) relies on the memory limit.
  const modeCases: [string, Record<string, unknown>, Record<string, string>][] = [
    ["bwrap, defaults", {}, { memory: `${8 * (1024 + 64) + 512}Mi`, cpu: "8" }],
    ["runtimeClass", { sandbox: { mode: "runtimeClass", runtimeClassName: "gvisor" } }, { cpu: "8" }],
    [
      "small kernels",
      { episodesPerWorker: 2, sandbox: { memoryMiB: 256 } },
      { memory: `${2 * 320 + 512}Mi`, cpu: "2" },
    ],
    ["user limit kept", { resources: { limits: { memory: "3Gi", cpu: "2" } } }, { memory: "3Gi", cpu: "2" }],
    [
      "request becomes the limit",
      { resources: { requests: { memory: "5Gi" } } },
      { memory: "5Gi", cpu: "8" },
    ],
    ["CPU request becomes the CPU limit", { resources: { requests: { cpu: "3" } } }, { cpu: "3" }],
  ];
  for (const [what, spec, limits] of modeCases)
    it(`sandbox mode weak and memory and CPU limits on the worker: ${what}`, () => {
      const c = buildWorkerDeployment(makePool(spec), undefined, 1).spec!.template.spec!.containers[0]!;
      expect(c.env!.find((e) => e.name === "L0_WORKER_SANDBOX_MODE")!.value).to.equal("weak");
      expect(c.resources!.limits!.memory, "memory limit always set").to.be.a("string");
      expect(c.resources!.limits!.cpu, "CPU limit always set").to.be.a("string");
      expect(c.resources!.limits).to.include(limits);
      if (!spec.resources)
        expect(parseInt(c.resources!.requests!.memory!)).to.be.at.most(
          parseInt(c.resources!.limits!.memory!),
        );
    });

  it("workers reach the run's hub and engine by Service DNS; the search key is a mounted file", () => {
    const p = makePool({
      tools: { search: { backend: "http", url: "https://s", secretRef: { name: "k" } } },
    });
    const env = buildWorkerDeployment(p, makeRun({ inference: { port: 9000 } }), 1).spec!.template.spec!
      .containers[0]!.env!;
    const get = (n: string) => env.find((e) => e.name === n);
    expect(get("L0_WORKER_HUB")!.value).to.equal("qa-hub.ns.svc:7070");
    expect(get("L0_WORKER_ENGINE_URL")!.value).to.equal("http://qa-inference.ns.svc:9000");
    expect(get("L0_WORKER_SEARCH_KEY_FILE")!.value).to.equal("/var/run/l0-search/apiKey");
    const pod = buildWorkerDeployment(p, undefined, 1).spec!.template.spec!;
    expect(pod.volumes!.find((v) => v.name === "search-key")!.secret!.secretName).to.equal("k");
    expect(
      env.every((e) => !e.valueFrom?.secretKeyRef),
      "no secret in the environment",
    ).to.equal(true);
  });

  it("NetworkPolicy: ingress only to metrics; egress to hub, engine, DNS and declared tool CIDRs", () => {
    const np = buildNetworkPolicy(
      makePool({ tools: { egress: [{ cidr: "10.1.0.0/16", ports: [443] }] } }),
      makeRun({ inference: {} }),
    );
    expect(np.spec!.policyTypes).to.deep.equal(["Ingress", "Egress"]);
    expect(np.spec!.ingress).to.deep.equal([{ ports: [{ protocol: "TCP", port: 9090 }] }]);
    const to = np.spec!.egress!.map((e) => JSON.stringify(e.to));
    expect(to).to.have.length(4);
    expect(to[0]).to.include('"app.kubernetes.io/component":"trainer"');
    expect(to[1]).to.include("kube-dns");
    expect(to[2]).to.include('"app.kubernetes.io/component":"inference"');
    expect(np.spec!.egress![3]).to.deep.equal({
      to: [{ ipBlock: { cidr: "10.1.0.0/16" } }],
      ports: [{ protocol: "TCP", port: 443 }],
    });
  });

  it("ServiceAccount mounts no token; PDB selects the workers", () => {
    expect(buildServiceAccount(makePool()).automountServiceAccountToken).to.equal(false);
    expect(buildPdb(makePool()).spec!.selector!.matchLabels).to.deep.equal({
      "l0.dev/pool": "p",
      "app.kubernetes.io/component": "workers",
    });
  });
});
