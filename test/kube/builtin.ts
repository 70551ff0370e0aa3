// Defaulting and validation of the built-in kinds, reduced to what an operator's objects meet:
// the defaults a real server adds (so desired-vs-observed diffs behave as on a cluster), object
// names and labels, required pod fields, selector/template agreement, and immutable fields.
import { crdCauses } from "./crd-admit.js";
import { type Cause, forbiddenField, invalidValue, required } from "./errors.js";
import { fromLabelSelector, matchesLabels } from "./selectors.js";
import { LABEL_1123, LABEL_1123_MSG, dnsErrors, validateMeta } from "./names.js";
import { podResourceCauses } from "./quantities.js";
import { networkPolicyCauses, pdbCauses } from "./validate-policy.js";

/** ConfigMaps and Secrets hold at most 1 MiB (core.MaxSecretSize). */
export const MAX_DATA_BYTES = 1024 * 1024;
import { deepEqual, isObj, type Obj } from "./types.js";

function defaultContainer(c: Obj): void {
  c.terminationMessagePath ??= "/dev/termination-log";
  c.terminationMessagePolicy ??= "File";
  const image = String(c.image ?? "");
  const tag = image.includes("@") ? "digest" : /:[^/]+$/.exec(image)?.[0]?.slice(1);
  c.imagePullPolicy ??= !tag || tag === "latest" ? "Always" : "IfNotPresent";
  c.resources ??= {};
  for (const p of (c.ports ?? []) as Obj[]) p.protocol ??= "TCP";
  for (const e of (c.env ?? []) as Obj[]) if (e.valueFrom?.fieldRef) e.valueFrom.fieldRef.apiVersion ??= "v1";
}

export function defaultPodSpec(spec: Obj): void {
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= "ClusterFirst";
  spec.securityContext ??= {};
  spec.schedulerName ??= "default-scheduler";
  spec.enableServiceLinks ??= true;
  for (const c of [...((spec.containers ?? []) as Obj[]), ...((spec.initContainers ?? []) as Obj[])])
    defaultContainer(c);
  for (const v of (spec.volumes ?? []) as Obj[]) {
    if (v.secret) v.secret.defaultMode ??= 420;
    if (v.configMap) v.configMap.defaultMode ??= 420;
    if (v.emptyDir === undefined && Object.keys(v).length === 1) v.emptyDir = {};
  }
}

function validatePodSpec(spec: Obj | undefined, path: string): Cause[] {
  if (!isObj(spec)) return [required(path)];
  const causes: Cause[] = [];
  const containers = spec.containers as Obj[] | undefined;
  if (!Array.isArray(containers) || containers.length === 0) causes.push(required(`${path}.containers`));
  const names = new Set<string>();
  (containers ?? []).forEach((c, i) => {
    const p = `${path}.containers[${i}]`;
    if (!c.name) causes.push(required(`${p}.name`));
    else if (!LABEL_1123.test(c.name)) causes.push(invalidValue(`${p}.name`, c.name, LABEL_1123_MSG));
    else if (names.has(c.name))
      causes.push({
        reason: "FieldValueDuplicate",
        message: `Duplicate value: ${JSON.stringify(c.name)}`,
        field: `${p}.name`,
      });
    names.add(c.name);
    if (!c.image) causes.push(required(`${p}.image`));
  });
  // The Job controller names indexed pods' hosts `<job>-<index>`: a long Job name fails here.
  for (const f of ["hostname", "subdomain"])
    if (typeof spec[f] === "string") {
      const errs = dnsErrors(spec[f], true);
      if (errs.length) causes.push(invalidValue(`${path}.${f}`, spec[f], errs.join("; ")));
    }
  if (typeof spec.runtimeClassName === "string") {
    const errs = dnsErrors(spec.runtimeClassName, false);
    if (errs.length)
      causes.push(invalidValue(`${path}.runtimeClassName`, spec.runtimeClassName, errs.join("; ")));
  }
  causes.push(...podResourceCauses(spec, path), ...userNamespaceCauses(spec, path));
  return causes;
}

/**
 * What a pod in its own user namespace may not do, and what only such a pod may do, as
 * apimachinery's core validation has it (v1.36): `procMount` is Default or Unmasked, and
 * Unmasked needs `hostUsers: false`; a user-namespaced pod shares none of the host's namespaces.
 */
function userNamespaceCauses(spec: Obj, path: string): Cause[] {
  const causes: Cause[] = [];
  const hostUsers = spec.hostUsers !== false;
  const lists: [string, unknown][] = [
    ["initContainers", spec.initContainers],
    ["containers", spec.containers],
  ];
  for (const [list, cs] of lists)
    ((Array.isArray(cs) ? cs : []) as Obj[]).forEach((c, i) => {
      const pm = c.securityContext?.procMount;
      const f = `${path}.${list}[${i}].securityContext.procMount`;
      if (pm === undefined || pm === "Default") return;
      if (pm !== "Unmasked")
        causes.push({
          reason: "FieldValueNotSupported",
          message: `Unsupported value: ${JSON.stringify(pm)}: supported values: "Default", "Unmasked"`,
          field: f,
        });
      else if (hostUsers) causes.push(invalidValue(f, pm, "`hostUsers` must be false to use `Unmasked`"));
    });
  if (!hostUsers)
    for (const ns of ["hostNetwork", "hostPID", "hostIPC"])
      if (spec[ns] === true) causes.push(forbiddenField(`${path}.${ns}`, "when `hostUsers` is false"));
  return causes;
}

/** ConfigMap and Secret keys and their 1 MiB limit on the data (decoded bytes for a Secret). */
function dataCauses(kind: string, o: Obj): Cause[] {
  const causes: Cause[] = [];
  const bags: [string, Obj | undefined, (v: unknown) => number][] =
    kind === "Secret"
      ? [["data", o.data, (v) => Buffer.from(String(v), "base64").length]]
      : [
          ["data", o.data, (v) => Buffer.byteLength(String(v))],
          ["binaryData", o.binaryData, (v) => Buffer.from(String(v), "base64").length],
        ];
  let total = 0;
  for (const [field, bag, size] of bags)
    for (const [k, v] of Object.entries(bag ?? {})) {
      if (!/^[-._a-zA-Z0-9]+$/.test(k) || k.length > 253)
        causes.push(
          invalidValue(
            `${field}[${k}]`,
            k,
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
          ),
        );
      total += size(v);
    }
  if (total > MAX_DATA_BYTES)
    causes.push({
      reason: "FieldValueTooLong",
      message: `Too long: may not be more than ${MAX_DATA_BYTES} bytes`,
      field: "[]",
    });
  return causes;
}

function validateTemplate(spec: Obj, path: string, restart: string[]): Cause[] {
  const t = spec.template as Obj | undefined;
  if (!isObj(t)) return [required(`${path}.template`)];
  const causes = [
    ...validateMeta(t.metadata ?? {}, `${path}.template.metadata`),
    ...validatePodSpec(t.spec, `${path}.template.spec`),
  ];
  const rp = t.spec?.restartPolicy;
  if (isObj(t.spec) && !restart.includes(rp))
    causes.push({
      reason: "FieldValueNotSupported",
      message: `Unsupported value: ${JSON.stringify(rp)}: supported values: ${restart.map((r) => JSON.stringify(r)).join(", ")}`,
      field: `${path}.template.spec.restartPolicy`,
    });
  return causes;
}

function validateSelected(spec: Obj, path: string): Cause[] {
  if (!isObj(spec.selector)) return [required(`${path}.selector`)];
  const sel = fromLabelSelector(spec.selector);
  if (sel.length === 0)
    return [invalidValue(`${path}.selector`, spec.selector, "empty selector is invalid for deployment")];
  const labels = spec.template?.metadata?.labels;
  if (!matchesLabels(sel, labels))
    return [
      invalidValue(
        `${path}.template.metadata.labels`,
        labels ?? {},
        "`selector` does not match template `labels`",
      ),
    ];
  if (typeof spec.replicas === "number" && spec.replicas < 0)
    return [invalidValue(`${path}.replicas`, spec.replicas, "must be greater than or equal to 0")];
  return [];
}

function mutablePodSpec(spec: Obj | undefined): Obj {
  const s = structuredClone(spec ?? {});
  for (const c of [...(s.containers ?? []), ...(s.initContainers ?? [])]) delete c.image;
  delete s.activeDeadlineSeconds;
  delete s.tolerations;
  return s;
}

/** Defaults a built-in object in place (what the server's decoding adds on create and update). */
export function applyDefaults(kind: string, o: Obj): void {
  const spec = (o.spec ??=
    kind === "ConfigMap" ||
    kind === "Secret" ||
    kind === "ServiceAccount" ||
    kind === "Event" ||
    kind === "Lease" ||
    kind === "RuntimeClass"
      ? undefined
      : {}) as Obj | undefined;
  if (spec === undefined) delete o.spec;
  switch (kind) {
    case "Pod":
      defaultPodSpec(spec!);
      // SetDefaults_Pod (not templates): a limit without a request is also the request.
      for (const c of (spec!.containers ?? []) as Obj[])
        if (isObj(c.resources?.limits))
          c.resources.requests = { ...c.resources.limits, ...(c.resources.requests ?? {}) };
      break;
    case "Deployment":
      spec!.replicas ??= 1;
      spec!.revisionHistoryLimit ??= 10;
      spec!.progressDeadlineSeconds ??= 600;
      spec!.strategy ??= { type: "RollingUpdate" };
      if (spec!.strategy.type === "RollingUpdate")
        spec!.strategy.rollingUpdate ??= { maxUnavailable: "25%", maxSurge: "25%" };
      if (isObj(spec!.template?.spec)) defaultPodSpec(spec!.template.spec);
      break;
    case "ReplicaSet":
      spec!.replicas ??= 1;
      if (isObj(spec!.template?.spec)) defaultPodSpec(spec!.template.spec);
      break;
    case "Job":
      if (spec!.completions === undefined && spec!.parallelism === undefined) spec!.completions = 1;
      spec!.parallelism ??= 1;
      spec!.backoffLimit ??= 6;
      spec!.completionMode ??= "NonIndexed";
      spec!.suspend ??= false;
      spec!.podReplacementPolicy ??= "TerminatingOrFailed";
      if (isObj(spec!.template?.spec)) defaultPodSpec(spec!.template.spec);
      break;
    case "Service":
      spec!.type ??= "ClusterIP";
      spec!.sessionAffinity ??= "None";
      spec!.internalTrafficPolicy ??= "Cluster";
      for (const p of (spec!.ports ?? []) as Obj[]) {
        p.protocol ??= "TCP";
        p.targetPort ??= p.port;
      }
      break;
    case "NetworkPolicy":
      spec!.policyTypes ??= spec!.egress ? ["Ingress", "Egress"] : ["Ingress"];
      for (const r of [...((spec!.ingress ?? []) as Obj[]), ...((spec!.egress ?? []) as Obj[])])
        for (const p of (r.ports ?? []) as Obj[]) p.protocol ??= "TCP";
      break;
    case "Namespace":
      spec!.finalizers ??= ["kubernetes"];
      o.metadata.labels = { ...(o.metadata.labels ?? {}), "kubernetes.io/metadata.name": o.metadata.name };
      break;
    case "Secret":
      o.type ??= "Opaque";
      if (isObj(o.stringData)) {
        o.data = { ...(o.data ?? {}) };
        for (const [k, v] of Object.entries(o.stringData))
          o.data[k] = Buffer.from(String(v)).toString("base64");
      }
      delete o.stringData;
      break;
  }
}

/** Kind-specific validation of a whole object; `old` is set on update (immutable fields). */
function validateEvent(o: Obj, group: string): Cause[] {
  const ns = o.metadata?.namespace;
  const causes: Cause[] = [];
  const ref = group ? o.regarding : o.involvedObject;
  const refField = group ? "regarding" : "involvedObject";
  if (ref?.namespace && ref.namespace !== ns)
    causes.push(invalidValue(`${refField}.namespace`, ref.namespace, "does not match event.namespace"));
  if (o.type !== undefined && o.type !== "Normal" && o.type !== "Warning")
    causes.push({
      reason: "FieldValueNotSupported",
      message: `Unsupported value: ${JSON.stringify(o.type)}: supported values: "Normal", "Warning"`,
      field: "type",
    });
  if (group) {
    // events.k8s.io/v1 requires what the legacy core API left optional.
    for (const f of ["eventTime", "reportingController", "reportingInstance", "action", "reason"])
      if (!o[f]) causes.push(required(f));
  }
  return causes;
}

export function validateBuiltin(kind: string, o: Obj, old?: Obj, group = ""): Cause[] {
  const spec = (o.spec ?? {}) as Obj;
  const causes: Cause[] = [];
  switch (kind) {
    case "CustomResourceDefinition":
      causes.push(...crdCauses(o));
      break;
    case "Event":
      causes.push(...validateEvent(o, group));
      break;
    case "Pod":
      causes.push(...validatePodSpec(o.spec, "spec"));
      if (old && !deepEqual(mutablePodSpec(old.spec), mutablePodSpec(o.spec)))
        causes.push(
          forbiddenField(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
          ),
        );
      break;
    case "Deployment":
    case "ReplicaSet":
      causes.push(...validateSelected(spec, "spec"), ...validateTemplate(spec, "spec", ["Always"]));
      if (old && !deepEqual(old.spec?.selector, spec.selector))
        causes.push(invalidValue("spec.selector", spec.selector, "field is immutable"));
      break;
    case "Job":
      causes.push(...validateTemplate(spec, "spec", ["OnFailure", "Never"]));
      if (spec.completionMode === "Indexed" && typeof spec.completions !== "number")
        causes.push(required("spec.completions"));
      for (const f of ["parallelism", "completions", "backoffLimit"])
        if (typeof spec[f] === "number" && spec[f] < 0)
          causes.push(invalidValue(`spec.${f}`, spec[f], "must be greater than or equal to 0"));
      if (old)
        for (const f of ["selector", "template", "completionMode", "completions"])
          if (!deepEqual(old.spec?.[f], spec[f]))
            causes.push(invalidValue(`spec.${f}`, spec[f], "field is immutable"));
      break;
    case "Service":
      if (old && old.spec?.clusterIP && spec.clusterIP !== old.spec.clusterIP)
        causes.push(invalidValue("spec.clusterIP", spec.clusterIP, "field is immutable"));
      (spec.ports ?? []).forEach((p: Obj, i: number) => {
        if (typeof p.port !== "number") causes.push(required(`spec.ports[${i}].port`));
        if ((spec.ports as Obj[]).length > 1 && !p.name) causes.push(required(`spec.ports[${i}].name`));
      });
      break;
    case "NetworkPolicy":
      causes.push(...networkPolicyCauses(spec));
      break;
    case "PodDisruptionBudget":
      causes.push(...pdbCauses(spec));
      break;
    case "RuntimeClass": {
      const errs = typeof o.handler === "string" ? dnsErrors(o.handler, true) : [];
      if (!o.handler) causes.push(required("handler"));
      else if (errs.length) causes.push(invalidValue("handler", o.handler, errs.join("; ")));
      if (old && old.handler !== o.handler)
        causes.push(invalidValue("handler", o.handler, "field is immutable"));
      break;
    }
    case "ConfigMap":
    case "Secret":
      causes.push(...dataCauses(kind, o));
      if (
        old?.immutable === true &&
        (!deepEqual(old.data, o.data) || !deepEqual(old.binaryData, o.binaryData))
      )
        causes.push(forbiddenField("data", "field is immutable when `immutable` is set"));
      break;
    case "Lease":
      if (typeof spec.leaseDurationSeconds === "number" && spec.leaseDurationSeconds <= 0)
        causes.push(
          invalidValue("spec.leaseDurationSeconds", spec.leaseDurationSeconds, "must be greater than 0"),
        );
      break;
  }
  return causes;
}
