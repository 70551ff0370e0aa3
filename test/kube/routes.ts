// Kubernetes REST paths to a resource type, namespace, name and subresource, and the verb a
// method + query means (get, list, watch, create, update, patch, delete, deletecollection).
import { type ResourceTable } from "./resources.js";
import { type ResourceType } from "./types.js";

export interface Route {
  t: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export function route(table: ResourceTable, path: string): Route | "discovery" | undefined {
  const seg = path.split("/").filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string | undefined;
  let rest: string[];
  if (seg[0] === "api") [group, version, rest] = ["", seg[1], seg.slice(2)];
  else if (seg[0] === "apis") [group, version, rest] = [seg[1] ?? "", seg[2], seg.slice(3)];
  else return undefined;
  if (version === undefined || rest.length === 0) return "discovery";
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3 && table.byPath(group, version, rest[2]!)?.namespaced) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const t = table.byPath(group, version, rest[0]!);
  if (!t || rest.length > 3) return undefined;
  if (t.namespaced && namespace === undefined && rest.length > 1) return undefined;
  return {
    t,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(rest[1] ? { name: rest[1] } : {}),
    ...(rest[2] ? { subresource: rest[2] } : {}),
  };
}

export function verbOf(method: string, r: Route, q: URLSearchParams): string {
  const watch = q.get("watch") === "true" || q.get("watch") === "1";
  switch (method) {
    case "GET":
      // GET .../name?watch=1 is the legacy single-object watch (a watch with a name selector).
      if (watch && !r.subresource) return "watch";
      return r.name ? "get" : "list";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return r.name ? "delete" : "deletecollection";
  }
  return method.toLowerCase();
}
