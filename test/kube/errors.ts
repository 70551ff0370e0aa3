// Kubernetes `Status` failures as the real API server writes them (reason, code, message
// wording, details with causes), thrown inside the server and turned into responses at the edge.
import { type Obj, type ResourceType, qualifiedKind, qualifiedResource } from "./types.js";

export interface Cause {
  reason: string;
  message: string;
  field: string;
}

export class KubeError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Obj,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  status(): Obj {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

const details = (t: ResourceType, name: string): Obj => ({
  name,
  ...(t.group ? { group: t.group } : {}),
  kind: t.plural,
});

export const notFound = (t: ResourceType, name: string): KubeError =>
  new KubeError(404, "NotFound", `${qualifiedResource(t)} "${name}" not found`, details(t, name));

export const alreadyExists = (t: ResourceType, name: string): KubeError =>
  new KubeError(409, "AlreadyExists", `${qualifiedResource(t)} "${name}" already exists`, details(t, name));

export const conflict = (t: ResourceType, name: string, why: string): KubeError =>
  new KubeError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualifiedResource(t)} "${name}": ${why}`,
    details(t, name),
  );

export const staleConflict = (t: ResourceType, name: string): KubeError =>
  conflict(
    t,
    name,
    "the object has been modified; please apply your changes to the latest version and try again",
  );

export function invalid(t: ResourceType, name: string, causes: Cause[]): KubeError {
  const parts = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const list = parts.length === 1 ? parts[0] : `[${parts.join(", ")}]`;
  return new KubeError(422, "Invalid", `${qualifiedKind(t)} "${name}" is invalid: ${list}`, {
    name,
    ...(t.group ? { group: t.group } : {}),
    kind: t.kind,
    causes,
  });
}

export const required = (field: string): Cause => ({
  reason: "FieldValueRequired",
  message: "Required value",
  field,
});

export const invalidValue = (field: string, value: unknown, why: string): Cause => ({
  reason: "FieldValueInvalid",
  message: `Invalid value: ${JSON.stringify(value)}: ${why}`,
  field,
});

export const forbiddenField = (field: string, why: string): Cause => ({
  reason: "FieldValueForbidden",
  message: `Forbidden: ${why}`,
  field,
});

export const badRequest = (message: string): KubeError => new KubeError(400, "BadRequest", message);

export const gone = (message: string): KubeError => new KubeError(410, "Expired", message);

export const tooOld = (requested: number, oldest: number): KubeError =>
  gone(`too old resource version: ${requested} (${oldest})`);

export const methodNotAllowed = (): KubeError =>
  new KubeError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");

export const unsupportedMediaType = (accepted: string[]): KubeError =>
  new KubeError(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(", ")}`,
  );

export const notFoundPath = (): KubeError =>
  new KubeError(404, "NotFound", "the server could not find the requested resource", {});
