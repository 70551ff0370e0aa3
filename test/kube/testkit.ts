// Helpers for tests that use the in-process API server: typed clients for a server, a bounded
// poll for eventually-consistent effects (GC, controllers), and small object builders.
import * as k8s from "@kubernetes/client-node";
import { runManifest } from "../fixtures/runs.js";
import { type KubeServer } from "./server.js";

export interface Clients {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  batch: k8s.BatchV1Api;
  custom: k8s.CustomObjectsApi;
  objects: k8s.KubernetesObjectApi;
  coordination: k8s.CoordinationV1Api;
}

export function clients(kube: KubeServer, namespace = "default"): Clients {
  const kc = kube.kubeConfig(namespace);
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    objects: k8s.KubernetesObjectApi.makeApiClient(kc),
    coordination: kc.makeApiClient(k8s.CoordinationV1Api),
  };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 5000,
): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Runs `fn` and returns the ApiException it throws (fails the test if it does not throw). */
export async function apiError(
  fn: () => Promise<unknown>,
): Promise<{ code: number; body: any; headers: Record<string, string> }> {
  try {
    await fn();
  } catch (err) {
    const e = err as { code?: number; body?: unknown; headers?: Record<string, string> };
    if (typeof e.code !== "number") throw err;
    const body = typeof e.body === "string" ? JSON.parse(e.body) : e.body;
    return { code: e.code, body, headers: e.headers ?? {} };
  }
  throw new Error("expected the call to fail");
}

export const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
export const jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
export const strategicPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch);

export function deployment(
  name: string,
  replicas = 1,
  labels: Record<string, string> = { app: name },
): k8s.V1Deployment {
  return {
    metadata: { name, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: "main", image: "busybox:1.36" }] } },
    },
  };
}

export function job(name: string, spec: Partial<k8s.V1JobSpec> = {}): k8s.V1Job {
  return {
    metadata: { name },
    spec: {
      template: { spec: { restartPolicy: "Never", containers: [{ name: "main", image: "busybox:1.36" }] } },
      ...spec,
    },
  };
}

/** A TrainingRun the API accepts (test/fixtures/runs.ts), without a namespace (the URL gives it). */
export function trainingRun(name: string, extra: Record<string, unknown> = {}): Record<string, any> {
  const { namespace: _ns, ...metadata } = runManifest(name, extra).metadata;
  return { ...runManifest(name, extra), metadata };
}

export const TR = { group: "l0.dev", version: "v1alpha1", plural: "trainingruns" } as const;
export const AWP = { group: "l0.dev", version: "v1alpha1", plural: "agentworkerpools" } as const;
