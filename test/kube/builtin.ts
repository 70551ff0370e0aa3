// Defaulting and validation of the built-in kinds, reduced to what an operator's objects meet:
// the defaults a real server adds (so desired-vs-observed diffs behave as on a cluster), object
// names and labels, required pod fields, selector/template agreement, and immutable fields.
import { crdCauses } from "./crd-admit.js";
import { type Cause, forbiddenField, invalidValue, required } from "./errors.js";
import { fromLabelSelector, matchesLabels } from "./selectors.js";
import { deepEqual, isObj, type Obj } from "./types.js";

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_1123_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_1035_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/** Name rules by kind: Namespaces are RFC 1123 labels, Services DNS-1035 labels, the rest subdomains. */
export function validateName(kind: string, name: string): Cause[] {
  if (kind === "Namespace")
    return LABEL_1123.test(name) && name.length <= 63
      ? []
      : [invalidValue("metadata.name", name, LABEL_1123_MSG)];
  if (kind === "Service")
    return LABEL_1035.test(name) && name.length <= 63
      ? []
      : [invalidValue("metadata.name", name, LABEL_1035_MSG)];
  return SUBDOMAIN.test(name) && name.length <= 253
    ? []
    : [invalidValue("metadata.name", name, SUBDOMAIN_MSG)];
}

function validLabelKey(k: string): boolean {
  const parts = k.split("/");
  if (parts.length > 2) return false;
  const name = parts[parts.length - 1]!;
  if (parts.length === 2 && !(SUBDOMAIN.test(parts[0]!) && parts[0]!.length <= 253)) return false;
  return name.length <= 63 && QUALIFIED.test(name);
}

export function validateMeta(meta: Obj, path = "metadata"): Cause[] {
  const causes: Cause[] = [];
  for (const [k, v] of Object.entries((meta.labels ?? {}) as Record<string, unknown>)) {
    if (!validLabelKey(k))
      causes.push(
        invalidValue(
          `${path}.labels`,
          k,
          "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ),
      );
    if (typeof v !== "string" || v.length > 63 || !LABEL_VALUE.test(v))
      causes.push(
        invalidValue(
          `${path}.labels`,
          v,
          "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ),
      );
  }
  for (const [k, v] of Object.entries((meta.annotations ?? {}) as Record<string, unknown>)) {
    if (typeof v !== "string") causes.push(invalidValue(`${path}.annotations.${k}`, v, "must be a string"));
  }
  return causes;
}

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
    kind === "Lease"
      ? undefined
      : {}) as Obj | undefined;
  if (spec === undefined) delete o.spec;
  switch (kind) {
    case "Pod":
      defaultPodSpec(spec!);
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
    case "ConfigMap":
    case "Secret":
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
