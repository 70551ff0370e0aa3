// Discovery documents (/api, /apis, /api/v1, /apis/{group}/{version}, /version) in the legacy
// (non-aggregated) format, enough for client-node's KubernetesObjectApi and kubectl.
import { type ResourceTable } from "./resources.js";
import { type Obj } from "./types.js";

export function discovery(table: ResourceTable, path: string, serverAddress: string): Obj | undefined {
  const groups = table.groups();
  if (path === "/version")
    return {
      major: "1",
      minor: "31",
      gitVersion: "v1.31.0-l0-test",
      platform: "linux/amd64",
      goVersion: "n/a",
    };
  if (path === "/api")
    return {
      kind: "APIVersions",
      versions: ["v1"],
      serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
    };
  const groupDoc = (name: string): Obj => {
    const versions = (groups.get(name) ?? []).map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
    return { name, versions, preferredVersion: versions[0] };
  };
  if (path === "/apis")
    return {
      kind: "APIGroupList",
      apiVersion: "v1",
      groups: [...groups.keys()].filter((g) => g !== "").map(groupDoc),
    };
  const m = /^\/(?:api\/(v1)|apis\/([^/]+)(?:\/([^/]+))?)$/.exec(path);
  if (!m) return undefined;
  const group = m[1] ? "" : m[2]!;
  const version = m[1] ?? m[3];
  if (!groups.has(group)) return undefined;
  if (version === undefined) return { kind: "APIGroup", apiVersion: "v1", ...groupDoc(group) };
  const types = table.all.filter((t) => t.group === group && t.version === version);
  if (types.length === 0) return undefined;
  const resources: Obj[] = [];
  for (const t of types) {
    resources.push({
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: t.verbs,
      ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
      ...(t.categories ? { categories: t.categories } : {}),
    });
    if (t.status)
      resources.push({
        name: `${t.plural}/status`,
        singularName: "",
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ["get", "patch", "update"],
      });
    if (t.scale)
      resources.push({
        name: `${t.plural}/scale`,
        singularName: "",
        namespaced: t.namespaced,
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        verbs: ["get", "patch", "update"],
      });
  }
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: group ? `${group}/${version}` : version,
    resources,
  };
}
