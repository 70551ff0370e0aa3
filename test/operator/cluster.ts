// The operator scenarios' view of a cluster, the same for any API server: a kubeconfig file, a
// fresh namespace per test (deleted after it, runs first so their finalizers are released while
// the operator still runs), the operator's Manager watching that namespace, reads through the
// operator's own REST client, and pod status written by the test where a kubelet would (no
// kubelet is assumed: pods may never be scheduled or run). `L0_TEST_KUBECONFIG` points it at an
// external cluster (test/operator/scenarios.test.ts); without it the in-process API server is
// started over HTTPS and reached through a kubeconfig file, the same code path.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { createLogger, silentLogger } from "../../lib/log.js";
import { createRegistry } from "../../lib/metrics.js";
import { Manager, type ManagerOptions } from "../../operator/manager.js";
import { type Kind, RestKubeApi, isStatus } from "../../operator/runtime/kube.js";
import { type KubeServer, startKubeServer } from "../kube/server.js";
import { eventually } from "./harness.js";

type Obj = KubernetesObject & Record<string, any>;

export interface Cluster {
  /** The namespace of this test (created for it). */
  ns: string;
  /** How long waits may take (a real cluster is slower than the in-process server). */
  waitMs: number;
  /** The test's own client (not the operator's): the same REST client, another field manager. */
  api: RestKubeApi;
  /** Every request the operator made, for the RBAC check. */
  requests: { method: string; path: string }[];
  read(kind: Kind, name: string): Promise<Obj | undefined>;
  pods(labelSelector: string): Promise<Obj[]>;
  /** What a kubelet would write: the pod Running (and Ready). */
  startPod(pod: Obj, ready?: boolean): Promise<void>;
  /** What a kubelet would write: the pod's container exited with `exitCode` and `message`. */
  failPod(pod: Obj, exitCode: number, message?: string): Promise<void>;
  startOperator(extra?: Partial<ManagerOptions>): Promise<Manager>;
  stop(): Promise<void>;
}

/** A cluster for one test: external when `kubeconfigFile` is given, else a fresh in-process one. */
export async function openCluster(kubeconfigFile?: string): Promise<Cluster> {
  let kube: KubeServer | undefined;
  let dir: string | undefined;
  let file = kubeconfigFile;
  if (!file) {
    // The in-process server as if it were any cluster: HTTPS, a kubeconfig file, controllers but
    // no kubelet that starts pods (the test does, as it must on a cluster without nodes).
    kube = await startKubeServer({
      crdDir: "crds",
      tls: true,
      sim: { kubelet: "manual", jobPods: "manual" },
    });
    dir = mkdtempSync(join(tmpdir(), "l0-cluster-"));
    file = join(dir, "kubeconfig");
    writeFileSync(file, kube.kubeConfigYaml());
  }
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  const api = new RestKubeApi({ kubeConfig: kc, fieldManager: "l0-e2e" });
  const ns = `l0-e2e-${randomBytes(4).toString("hex")}`;
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns, labels: { "l0.dev/e2e": "true" } } } });
  const managers: Manager[] = [];
  const requests: { method: string; path: string }[] = [];
  const waitMs = kubeconfigFile ? 60_000 : 10_000;

  const read = async (kind: Kind, name: string): Promise<Obj | undefined> => {
    try {
      return await api.get<Obj>(kind, ns, name);
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  };
  const writeStatus = async (pod: Obj, status: Obj): Promise<void> => {
    const fresh = (await read("Pod", pod.metadata!.name!))!;
    await api.replaceStatus("Pod", { ...fresh, status: { ...fresh.status, ...status } });
  };
  const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const condition = (type: string, on: boolean) => ({
    type,
    status: on ? "True" : "False",
    lastTransitionTime: now(),
  });
  return {
    ns,
    waitMs,
    api,
    requests,
    read,
    async pods(labelSelector) {
      return (await api.list<Obj>("Pod", ns, { labelSelector })).items;
    },
    startPod: (pod, ready = true) =>
      writeStatus(pod, {
        phase: "Running",
        startTime: now(),
        podIP: "10.244.0.10",
        conditions: ["Initialized", "PodScheduled"]
          .map((t) => condition(t, true))
          .concat(["Ready", "ContainersReady"].map((t) => condition(t, ready))),
        containerStatuses: (pod.spec?.containers ?? []).map((c: Obj) => ({
          name: c.name,
          image: c.image,
          imageID: "",
          ready,
          started: true,
          restartCount: 0,
          state: { running: { startedAt: now() } },
        })),
      }),
    failPod: (pod, exitCode, message) =>
      writeStatus(pod, {
        phase: "Failed",
        conditions: ["Ready", "ContainersReady"].map((t) => condition(t, false)),
        containerStatuses: (pod.spec?.containers ?? []).map((c: Obj) => ({
          name: c.name,
          image: c.image,
          imageID: "",
          ready: false,
          started: false,
          restartCount: 0,
          state: {
            terminated: { exitCode, reason: "Error", ...(message ? { message } : {}), finishedAt: now() },
          },
        })),
      }),
    async startOperator(extra = {}) {
      const m = new Manager({
        api: new RestKubeApi({
          kubeConfig: kc,
          onRequest: (method, path) => requests.push({ method, path }),
        }),
        namespace: ns,
        logger: process.env.L0_TEST_LOG
          ? createLogger({ component: "operator", level: "debug", format: "pretty" })
          : silentLogger(),
        registry: createRegistry({ defaultMetrics: false }),
        relistJitterMs: 50,
        resyncMs: 0,
        ...extra,
      });
      managers.push(m);
      await m.start();
      return m;
    },
    async stop() {
      try {
        // Runs first, while an operator can still release their finalizers; then the namespace.
        const runs = await api.list<Obj>("TrainingRun", ns);
        for (const r of runs.items)
          await api.delete("TrainingRun", ns, r.metadata!.name!).catch(() => undefined);
        if (managers.length)
          await eventually(
            async () => (await api.list("TrainingRun", ns)).items.length === 0,
            "runs finalized",
            waitMs,
          );
      } finally {
        await Promise.all(managers.map((m) => m.stop()));
        await core.deleteNamespace({ name: ns }).catch(() => undefined);
        await kube?.stop();
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
