// Test harness: the in-process API server (test/kube) with the CRDs, and the operator's Manager
// talking to it over real HTTP through a client-node KubeConfig. Object builders for runs.
import * as k8s from "@kubernetes/client-node";
import { type Registry } from "prom-client";
import { createLogger, silentLogger } from "../../lib/log.js";
import { createRegistry } from "../../lib/metrics.js";
import { type ReplicaRecommender } from "../../operator/autoscaler/api.js";
import { Manager, type ManagerOptions } from "../../operator/manager.js";
import { RestKubeApi } from "../../operator/runtime/kube.js";
import { type HubStatsSource } from "../../operator/trainingrun/hub.js";
import { type HubView } from "../../operator/trainingrun/status.js";
import { type KubeServer, startKubeServer } from "../kube/server.js";
import { type SimOptions } from "../kube/sim.js";
import { runManifest } from "../fixtures/runs.js";

import { eventually as kubeEventually } from "../kube/testkit.js";

/** Polls until `fn` returns something truthy, and returns it (typed without the falsy cases). */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 5000,
): Promise<Exclude<T, false | null | undefined | 0 | "">> {
  return (await kubeEventually(fn, what, timeoutMs)) as Exclude<T, false | null | undefined | 0 | "">;
}

export interface Env {
  kube: KubeServer;
  kc: k8s.KubeConfig;
  custom: k8s.CustomObjectsApi;
  core: k8s.CoreV1Api;
  batch: k8s.BatchV1Api;
  apps: k8s.AppsV1Api;
  requests: { method: string; path: string }[];
  startOperator(extra?: Partial<ManagerOptions>): Promise<Manager>;
  stop(): Promise<void>;
}

export async function startEnv(sim: SimOptions = {}): Promise<Env> {
  const kube = await startKubeServer({ crdDir: "crds", sim, bookmarkIntervalMs: 60_000 });
  const kc = kube.kubeConfig("default");
  const managers: Manager[] = [];
  const requests: { method: string; path: string }[] = [];
  return {
    kube,
    kc,
    requests,
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    core: kc.makeApiClient(k8s.CoreV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    async startOperator(extra = {}) {
      const registry: Registry = extra.registry ?? createRegistry({ defaultMetrics: false });
      const api = new RestKubeApi({
        kubeConfig: kube.kubeConfig(),
        onRequest: (method, path) => requests.push({ method, path }),
      });
      const m = new Manager({
        api,
        logger: process.env.L0_TEST_LOG
          ? createLogger({ component: "operator", level: "debug", format: "pretty" })
          : silentLogger(),
        registry,
        relistJitterMs: 50,
        resyncMs: 0,
        ...extra,
      });
      managers.push(m);
      await m.start();
      return m;
    },
    async stop() {
      await Promise.all(managers.map((m) => m.stop()));
      await kube.stop();
    },
  };
}

/** A TrainingRun manifest: `run("a", { workers: {...} })`; inline workers by default. */
export function run(name: string, spec: Record<string, unknown> = {}): Record<string, any> {
  return runManifest(name, {
    trainer: { gpusPerNode: 0, maxRestarts: 2 },
    workers: { replicas: 2 },
    ...spec,
  });
}

export const TR = { group: "l0.dev", version: "v1alpha1", namespace: "default", plural: "trainingruns" };
export const AWP = { group: "l0.dev", version: "v1alpha1", namespace: "default", plural: "agentworkerpools" };

export const getRun = (env: Env, name: string) =>
  env.kube.get("l0.dev/v1alpha1", "TrainingRun", "default", name);
export const getPool = (env: Env, name: string) =>
  env.kube.get("l0.dev/v1alpha1", "AgentWorkerPool", "default", name);
export const cond = (o: any, type: string) => (o?.status?.conditions ?? []).find((c: any) => c.type === type);

/** A hub that answers Stats from a table (no gRPC): `hub.set(stats)`. */
export function fakeHub(): HubStatsSource & {
  set(v: Partial<HubView>): void;
  fail(msg?: string): void;
} {
  let value: HubView = {
    step: 0,
    maxSteps: 10,
    policyVersion: 0,
    rewardMean: 0,
    backlog: 0,
  };
  let error: string | undefined;
  return {
    set(v) {
      value = { ...value, ...v };
      error = undefined;
    },
    fail(msg = "unreachable") {
      error = msg;
    },
    stats: () => (error ? Promise.reject(new Error(error)) : Promise.resolve({ ...value })),
  };
}

/** A recommender that returns what the test says. */
export function tableRecommender(replicas: () => number, backlog = 0): ReplicaRecommender {
  return {
    recommend: () =>
      Promise.resolve({
        replicas: replicas(),
        reason: "Test",
        message: "from the test",
        backlog,
        requeueAfterMs: 50,
      }),
    forget: () => undefined,
  };
}

/** The RBAC verb, group and resource of one request the operator made. */
export function rbacOf(method: string, path: string): { verb: string; group: string; resource: string } {
  const [p, query = ""] = path.split("?");
  const parts = p!.split("/").filter(Boolean);
  const core = parts[0] === "api";
  const group = core ? "" : parts[1]!;
  let rest = parts.slice(core ? 2 : 3);
  if (rest[0] === "namespaces" && rest.length > 2) rest = rest.slice(2);
  const [plural, name, sub] = rest;
  const resource = sub ? `${plural}/${sub}` : plural!;
  const verb =
    method === "WATCH" || /watch=1/.test(query)
      ? "watch"
      : (
          {
            GET: name ? "get" : "list",
            POST: "create",
            PUT: "update",
            PATCH: "patch",
            DELETE: "delete",
          } as Record<string, string>
        )[method]!;
  return { verb, group, resource };
}
