// The resource table: the built-in kinds the operator touches (paths, scope, subresources,
// delete defaults, as Kubernetes 1.31 serves them) and the custom kinds read from crds/.
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { readCrds, type CrdInfo } from "../../lib/crd-schema.js";
import { crdCauses } from "./crd-admit.js";
import { type Obj, type ResourceType, type ScaleSpec, typeKey } from "./types.js";

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

interface Builtin {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced?: boolean;
  status?: boolean;
  scale?: ScaleSpec;
  generation?: boolean;
  shortNames?: string[];
  orphan?: boolean;
}

const REPLICAS: ScaleSpec = {
  specReplicasPath: ".spec.replicas",
  statusReplicasPath: ".status.replicas",
  labelSelectorPath: ".status.selector",
};

const BUILTINS: Builtin[] = [
  {
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    namespaced: false,
    status: true,
    shortNames: ["ns"],
  },
  { group: "", version: "v1", kind: "Pod", plural: "pods", status: true, shortNames: ["po"] },
  { group: "", version: "v1", kind: "Service", plural: "services", status: true, shortNames: ["svc"] },
  { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", shortNames: ["cm"] },
  { group: "", version: "v1", kind: "Secret", plural: "secrets" },
  {
    group: "",
    version: "v1",
    kind: "PersistentVolumeClaim",
    plural: "persistentvolumeclaims",
    status: true,
    shortNames: ["pvc"],
  },
  { group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", shortNames: ["sa"] },
  { group: "", version: "v1", kind: "Event", plural: "events", shortNames: ["ev"] },
  {
    group: "",
    version: "v1",
    kind: "Node",
    plural: "nodes",
    namespaced: false,
    status: true,
    shortNames: ["no"],
  },
  {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
    status: true,
    scale: REPLICAS,
    generation: true,
    shortNames: ["deploy"],
  },
  {
    group: "apps",
    version: "v1",
    kind: "ReplicaSet",
    plural: "replicasets",
    status: true,
    scale: REPLICAS,
    generation: true,
    shortNames: ["rs"],
  },
  {
    group: "batch",
    version: "v1",
    kind: "Job",
    plural: "jobs",
    status: true,
    generation: true,
    orphan: true,
  },
  {
    group: "networking.k8s.io",
    version: "v1",
    kind: "NetworkPolicy",
    plural: "networkpolicies",
    generation: true,
    shortNames: ["netpol"],
  },
  {
    group: "policy",
    version: "v1",
    kind: "PodDisruptionBudget",
    plural: "poddisruptionbudgets",
    status: true,
    generation: true,
    shortNames: ["pdb"],
  },
  { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases" },
  { group: "node.k8s.io", version: "v1", kind: "RuntimeClass", plural: "runtimeclasses", namespaced: false },
  { group: "events.k8s.io", version: "v1", kind: "Event", plural: "events", shortNames: ["ev"] },
  { group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles" },
  { group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings" },
  {
    group: "apiextensions.k8s.io",
    version: "v1",
    kind: "CustomResourceDefinition",
    plural: "customresourcedefinitions",
    namespaced: false,
    status: true,
    generation: true,
    shortNames: ["crd", "crds"],
  },
];

function fromBuiltin(b: Builtin): ResourceType {
  return {
    group: b.group,
    version: b.version,
    kind: b.kind,
    listKind: `${b.kind}List`,
    plural: b.plural,
    singular: b.kind.toLowerCase(),
    shortNames: b.shortNames ?? [],
    namespaced: b.namespaced ?? true,
    status: b.status ?? false,
    ...(b.scale ? { scale: b.scale } : {}),
    generation: b.generation ?? false,
    custom: false,
    defaultPropagation: b.orphan ? "Orphan" : "Background",
    verbs: VERBS,
  };
}

export function builtinTypes(): ResourceType[] {
  return BUILTINS.map(fromBuiltin);
}

/** The served version's details of a CRD (subresources, names) as a resource table entry. */
export function crdType(info: CrdInfo): ResourceType {
  const spec = (info.crd.spec ?? {}) as Obj;
  const names = (spec.names ?? {}) as Obj;
  const version = ((spec.versions ?? []) as Obj[]).find((v) => v.name === info.version) ?? {};
  const sub = (version.subresources ?? {}) as Obj;
  return {
    group: info.group,
    version: info.version,
    kind: info.kind,
    listKind: names.listKind ?? `${info.kind}List`,
    plural: info.plural,
    singular: names.singular ?? info.kind.toLowerCase(),
    shortNames: names.shortNames ?? [],
    namespaced: info.namespaced,
    status: sub.status !== undefined,
    ...(sub.scale ? { scale: sub.scale as ScaleSpec } : {}),
    generation: true,
    custom: true,
    defaultPropagation: "Background",
    verbs: VERBS,
    ...(names.categories ? { categories: names.categories } : {}),
  };
}

// Parsing the CRD YAML is most of a warm start-up; servers of one process share the parsed
// (read-only) CRDs while the files' names, sizes and mtimes are unchanged.
const crdCache = new Map<string, { sig: string; crds: CrdInfo[] }>();

function cachedCrds(dir: string): CrdInfo[] {
  const abs = resolve(dir);
  const sig = readdirSync(abs)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => {
      const st = statSync(join(abs, f));
      return `${f}:${st.size}:${st.mtimeMs}`;
    })
    .join("|");
  const hit = crdCache.get(abs);
  if (hit?.sig === sig) return hit.crds;
  const crds = readCrds(abs);
  for (const c of crds) {
    // The real server refuses such a CRD; so does this one, before serving anything.
    const causes = crdCauses(c.crd);
    if (causes.length > 0)
      throw new Error(
        `CustomResourceDefinition ${c.plural}.${c.group} is invalid: ${causes.map((x) => `${x.field}: ${x.message}`).join("; ")}`,
      );
  }
  crdCache.set(abs, { sig, crds });
  return crds;
}

/** All served types, indexed the ways requests need them. */
export class ResourceTable {
  readonly all: ResourceType[];
  readonly crds: CrdInfo[];
  #byPath = new Map<string, ResourceType>();

  constructor(crds: CrdInfo[]) {
    this.crds = crds;
    this.all = [...builtinTypes(), ...crds.map(crdType)];
    for (const t of this.all) this.#byPath.set(`${t.group}/${t.version}/${t.plural}`, t);
  }

  static fromDir(dir: string | undefined): ResourceTable {
    return new ResourceTable(dir ? cachedCrds(dir) : []);
  }

  byPath(group: string, version: string, plural: string): ResourceType | undefined {
    return this.#byPath.get(`${group}/${version}/${plural}`);
  }

  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    return this.all.find((t) => t.group === group && t.version === version && t.kind === kind);
  }

  byKey(key: string): ResourceType | undefined {
    return this.all.find((t) => typeKey(t) === key);
  }

  /** Group -> versions, in a stable order (core first). */
  groups(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const t of this.all) {
      const vs = out.get(t.group) ?? [];
      if (!vs.includes(t.version)) vs.push(t.version);
      out.set(t.group, vs);
    }
    return out;
  }
}
