// Test helpers for the chart: the real helm binary (fetched by scripts/fetch-helm.sh), rendering
// to parsed objects, and offline schema validation of each object with kubernetes-models.
import { execFileSync, spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const CHART = join(ROOT, "charts/l0-operator");
export const RELEASE = "l0";
export const NAMESPACE = "l0-system";
export const MONITORING_APIS = ["ServiceMonitor", "PodMonitor", "PrometheusRule"].flatMap((k) => [
  "--api-versions",
  `monitoring.coreos.com/v1/${k}`,
]);

let helmPath: string | undefined;
/** Absolute path of helm; fetches it into .tools/ on first use (offline afterwards). */
export function helm(): string {
  helmPath ??= resolve(
    ROOT,
    execFileSync("bash", [join(ROOT, "scripts/fetch-helm.sh")], { cwd: ROOT, encoding: "utf8" }).trim(),
  );
  return helmPath;
}

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}
export function runHelm(args: string[], cwd = ROOT): HelmResult {
  const r = spawnSync(helm(), args, { cwd, encoding: "utf8", timeout: 30_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

/** `helm template` with extra arguments; throws with helm's stderr when it fails. */
export function render(args: string[] = [], chart = CHART): K8sObject[] {
  const r = runHelm(["template", RELEASE, chart, "--namespace", NAMESPACE, ...args]);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

export function find(objs: K8sObject[], kind: string, name?: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}
export function one(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = find(objs, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ""}, got ${found.length}`);
  return found[0]!;
}

type Model = new (data: never) => { validate(): void };
// apiVersion/kind -> kubernetes-models class. Loaded lazily so a test that renders nothing pays nothing.
const MODELS: Record<string, () => Promise<Model>> = {
  "v1/ServiceAccount": async () => (await import("kubernetes-models/v1/ServiceAccount")).ServiceAccount,
  "v1/Service": async () => (await import("kubernetes-models/v1/Service")).Service,
  "v1/ConfigMap": async () => (await import("kubernetes-models/v1/ConfigMap")).ConfigMap,
  "apps/v1/Deployment": async () => (await import("kubernetes-models/apps/v1/Deployment")).Deployment,
  "policy/v1/PodDisruptionBudget": async () =>
    (await import("kubernetes-models/policy/v1/PodDisruptionBudget")).PodDisruptionBudget,
  "rbac.authorization.k8s.io/v1/ClusterRole": async () =>
    (await import("kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole")).ClusterRole,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": async () =>
    (await import("kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding")).ClusterRoleBinding,
  "rbac.authorization.k8s.io/v1/Role": async () =>
    (await import("kubernetes-models/rbac.authorization.k8s.io/v1/Role")).Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": async () =>
    (await import("kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding")).RoleBinding,
  "apiextensions.k8s.io/v1/CustomResourceDefinition": async () =>
    (await import("kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition"))
      .CustomResourceDefinition,
  "monitoring.coreos.com/v1/ServiceMonitor": async () =>
    (await import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor"))
      .ServiceMonitor,
  "monitoring.coreos.com/v1/PodMonitor": async () =>
    (await import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor")).PodMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": async () =>
    (await import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule"))
      .PrometheusRule,
};

/**
 * Validates an object against its Kubernetes (or Prometheus Operator) schema. Throws naming the
 * object and the failing path; an object of a kind we have no schema for is an error too, so a
 * new template cannot slip past validation.
 */
export async function validate(obj: K8sObject): Promise<void> {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const load = MODELS[key];
  if (!load)
    throw new Error(`no schema known for ${key} (${obj.metadata.name}); add it to test/chart/helm.ts`);
  const Model = await load();
  try {
    new Model(obj as never).validate();
  } catch (err) {
    throw new Error(`${key} ${obj.metadata.name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
