// /openapi/v2 and /openapi/v3 for the served kinds, so kubectl's explain, client-side validation
// and its server-side-validation check work against this server. Built-in schemas come from
// client-node's generated models (field names, types, formats: no descriptions, no `required`,
// no patch strategies); custom resources carry their CRD's schema with its descriptions.
// Every PATCH/POST/PUT lists `fieldValidation`, which is how kubectl decides that the server
// validates fields itself. v2 is served as JSON only (client-go asks for protobuf; 406 then).
import { createHash } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { modelName } from "./fields.js";
import { type ResourceTable } from "./resources.js";
import { type Obj, type ResourceType } from "./types.js";

type Model = { attributeTypeMap?: { baseName: string; type: string; format: string }[] };
const models = k8s as unknown as Record<string, Model | undefined>;

/** A schema name in the Kubernetes style from a client-node model name (CoreV1Event -> io.k8s.api.core.v1.Event). */
export function schemaName(model: string): string {
  const m = /^([A-Z][a-z]+)?(V\d+(?:alpha\d+|beta\d+)?)(.+)$/.exec(model);
  if (!m) return `io.k8s.api.${model}`;
  const [, pkg, version, type] = m;
  return `io.k8s.api.${pkg ? `${pkg.toLowerCase()}.` : ""}${version!.toLowerCase()}.${type}`;
}

const gvkOf = (t: ResourceType): Obj => ({ group: t.group, kind: t.kind, version: t.version });

/** Schemas of a model and every model it reaches, keyed by schema name. */
function modelSchemas(root: string, ref: (name: string) => string, out: Map<string, Obj>): void {
  const typeSchema = (ty: string, format: string): Obj => {
    const arr = /^Array<(.+)>$/.exec(ty);
    if (arr) return { type: "array", items: typeSchema(arr[1]!, "") };
    const map = /^\{ \[key: string\]: (.+); \}$/.exec(ty);
    if (map) return { type: "object", additionalProperties: typeSchema(map[1]!, "") };
    if (ty === "string") return { type: "string", ...(format ? { format } : {}) };
    if (ty === "number")
      return format === "double"
        ? { type: "number", format }
        : { type: "integer", ...(format ? { format } : {}) };
    if (ty === "boolean") return { type: "boolean" };
    if (ty === "Date") return { type: "string", format: "date-time" };
    if (ty === "IntOrString")
      return { type: "string", format: "int-or-string", "x-kubernetes-int-or-string": true };
    if (models[ty]?.attributeTypeMap) {
      modelSchemas(ty, ref, out);
      return { $ref: ref(schemaName(ty)) };
    }
    return { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  };
  const name = schemaName(root);
  if (out.has(name)) return;
  const schema: Obj = { type: "object", properties: {} };
  out.set(name, schema);
  for (const a of models[root]?.attributeTypeMap ?? [])
    schema.properties[a.baseName] = typeSchema(a.type, a.format);
}

/** The schemas of one served type (and what they reference), with the GVK extension on the root. */
function typeSchemas(
  table: ResourceTable,
  t: ResourceType,
  ref: (name: string) => string,
  out: Map<string, Obj>,
): string {
  if (!t.custom) {
    const model = modelName(t)!;
    modelSchemas(model, ref, out);
    const name = schemaName(model);
    out.get(name)!["x-kubernetes-group-version-kind"] = [gvkOf(t)];
    return name;
  }
  modelSchemas("V1ObjectMeta", ref, out);
  const crd = table.crds.find((c) => c.kind === t.kind && c.group === t.group)!;
  const schema = structuredClone(crd.schema) as Obj;
  schema.properties = { ...(schema.properties ?? {}), metadata: { $ref: ref(schemaName("V1ObjectMeta")) } };
  schema["x-kubernetes-group-version-kind"] = [gvkOf(t)];
  const name = `${t.group.split(".").reverse().join(".")}.${t.version}.${t.kind}`;
  out.set(name, schema);
  return name;
}

const param = (name: string, where: "query" | "path", schema: Obj = { type: "string" }): Obj => ({
  name,
  in: where,
  schema,
  ...(where === "path" ? { required: true } : {}),
});
const WRITE_PARAMS = ["dryRun", "fieldManager", "fieldValidation"].map((n) => param(n, "query"));

/** Path items for one type (v3 shape; v2 converts the parameters and bodies). */
function typePaths(t: ResourceType, schemaRef: string): Record<string, Obj> {
  const base = t.group ? `/apis/${t.group}/${t.version}` : `/api/${t.version}`;
  const coll = t.namespaced ? `${base}/namespaces/{namespace}/${t.plural}` : `${base}/${t.plural}`;
  const ext = { "x-kubernetes-group-version-kind": gvkOf(t) };
  const body = (types: string[]) => ({
    content: Object.fromEntries(types.map((c) => [c, { schema: { $ref: schemaRef } }])),
    required: true,
  });
  const ok = {
    responses: {
      "200": { description: "OK", content: { "application/json": { schema: { $ref: schemaRef } } } },
    },
  };
  const op = (id: string, action: string, extra: Obj = {}): Obj => ({
    operationId: `${id}${t.kind}`,
    ...ok,
    ...extra,
    ...ext,
    "x-kubernetes-action": action,
  });
  const nsParam = t.namespaced ? [param("namespace", "path")] : [];
  const patchTypes = [
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    ...(t.custom ? [] : ["application/strategic-merge-patch+json"]),
  ];
  return {
    [coll]: {
      parameters: nsParam,
      get: op("list", "list"),
      post: op("create", "post", {
        parameters: WRITE_PARAMS,
        requestBody: body(["application/json", "application/yaml"]),
      }),
    },
    [`${coll}/{name}`]: {
      parameters: [param("name", "path"), ...nsParam],
      get: op("read", "get"),
      put: op("replace", "put", {
        parameters: WRITE_PARAMS,
        requestBody: body(["application/json", "application/yaml"]),
      }),
      patch: op("patch", "patch", {
        parameters: [...WRITE_PARAMS, param("force", "query", { type: "boolean" })],
        requestBody: {
          content: Object.fromEntries(patchTypes.map((c) => [c, { schema: { type: "object" } }])),
          required: true,
        },
      }),
      delete: op("delete", "delete"),
    },
  };
}

const gvPath = (t: ResourceType): string => (t.group ? `apis/${t.group}/${t.version}` : `api/${t.version}`);

/** The OpenAPI v3 document of one group-version ("api/v1", "apis/l0.dev/v1alpha1"). */
export function openapiV3(table: ResourceTable, gv: string): Obj | undefined {
  const types = table.all.filter((t) => gvPath(t) === gv && (t.custom || modelName(t)));
  if (!types.length) return undefined;
  const schemas = new Map<string, Obj>();
  const paths: Obj = {};
  const ref = (n: string) => `#/components/schemas/${n}`;
  for (const t of types) Object.assign(paths, typePaths(t, ref(typeSchemas(table, t, ref, schemas))));
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: "v1.36.0" },
    paths,
    components: { schemas: Object.fromEntries([...schemas].sort(([a], [b]) => (a < b ? -1 : 1))) },
  };
}

const hashOf = (doc: Obj): string =>
  createHash("sha512").update(JSON.stringify(doc)).digest("hex").slice(0, 128).toUpperCase();

/** /openapi/v3: where each group-version's document is, with a content hash as the real index has. */
export function openapiV3Index(table: ResourceTable): Obj {
  const gvs = [...new Set(table.all.map(gvPath))].sort();
  const paths: Obj = {};
  for (const gv of gvs) {
    const doc = openapiV3(table, gv);
    if (doc) paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${hashOf(doc)}` };
  }
  return { paths };
}

/** Rewrites v3 references and bodies into Swagger 2.0's shapes. */
function toV2(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toV2);
  if (v === null || typeof v !== "object") return v;
  const o = v as Obj;
  const out: Obj = {};
  for (const [k, x] of Object.entries(o)) {
    if (k === "$ref") out.$ref = String(x).replace("#/components/schemas/", "#/definitions/");
    else if (k === "requestBody") continue;
    else if (k === "content" && o.description !== undefined)
      out.schema = toV2(Object.values(x as Obj)[0]?.schema);
    else if (k === "schema" && (o.in === "query" || o.in === "path")) Object.assign(out, x);
    else out[k] = toV2(x);
  }
  if (o.requestBody) {
    const schema = Object.values((o.requestBody as Obj).content as Obj)[0]?.schema;
    out.parameters = [
      ...((out.parameters as Obj[]) ?? []),
      { name: "body", in: "body", required: true, schema: toV2(schema) },
    ];
  }
  return out;
}

/** /openapi/v2: every served kind in one Swagger 2.0 document. */
export function openapiV2(table: ResourceTable): Obj {
  const paths: Obj = {};
  const definitions: Obj = {};
  for (const gv of [...new Set(table.all.map(gvPath))]) {
    const doc = openapiV3(table, gv);
    if (!doc) continue;
    Object.assign(paths, toV2(doc.paths));
    Object.assign(definitions, toV2(doc.components.schemas));
  }
  return { swagger: "2.0", info: { title: "Kubernetes", version: "v1.36.0" }, paths, definitions };
}

const cache = new WeakMap<ResourceTable, Map<string, Obj | undefined>>();

/** The document for an /openapi path (cached per table), or undefined for a path that has none. */
export function openapiDocument(table: ResourceTable, path: string): Obj | undefined {
  let docs = cache.get(table);
  if (!docs) cache.set(table, (docs = new Map()));
  if (!docs.has(path))
    docs.set(
      path,
      path === "/openapi/v2"
        ? openapiV2(table)
        : path === "/openapi/v3"
          ? openapiV3Index(table)
          : path.startsWith("/openapi/v3/")
            ? openapiV3(table, path.slice("/openapi/v3/".length))
            : undefined,
    );
  return docs.get(path);
}
