// What the chart tests share: the release's names, the representative values file, and the
// operator Deployment's pod and container as rendered.
import { join } from "node:path";
import { type K8sObject, ROOT, one } from "./helm.js";

export const REPRESENTATIVE = join(ROOT, "test/chart/fixtures/representative.yaml");
export const FULLNAME = "l0-l0-operator";

export type Container = {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  securityContext: Record<string, unknown>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  ports: { name: string; containerPort: number }[];
};
export type PodSpec = {
  securityContext: Record<string, unknown>;
  containers: Container[];
  imagePullSecrets?: { name: string }[];
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  affinity?: Record<string, unknown>;
  serviceAccountName: string;
};
export const podSpec = (objs: K8sObject[]): PodSpec =>
  (one(objs, "Deployment").spec as { template: { spec: PodSpec } }).template.spec;
export const env = (c: Container): Record<string, string | undefined> =>
  Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
export const plainRules = (rules: readonly { apiGroups: string[]; resources: string[]; verbs: string[] }[]) =>
  rules.map((r) => ({ apiGroups: r.apiGroups, resources: r.resources, verbs: r.verbs }));
