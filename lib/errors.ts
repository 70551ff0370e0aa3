// Domain errors shared by every service. They carry what went wrong in our terms; the one
// mapping to gRPC status codes lives in lib/grpc.ts.

export type ErrorKind =
  | "InvalidArgument"
  | "NotFound"
  | "FailedPrecondition"
  | "Unauthenticated"
  | "AlreadyExists"
  | "Unavailable"
  | "ResourceExhausted"
  | "DeadlineExceeded"
  | "Internal";

export interface FieldViolation {
  field: string;
  description: string;
}

export class L0Error extends Error {
  readonly kind: ErrorKind;
  readonly reason: string;
  readonly violations: FieldViolation[];

  constructor(
    kind: ErrorKind,
    message: string,
    opts: { reason?: string; violations?: FieldViolation[] } = {},
  ) {
    super(message);
    this.name = `L0Error(${kind})`;
    this.kind = kind;
    this.reason = opts.reason ?? kind;
    this.violations = opts.violations ?? [];
  }
}

/** A request or config field that fails validation; the message starts with the field path. */
export function invalidField(field: string, description: string): L0Error {
  return new L0Error("InvalidArgument", `${field}: ${description}`, {
    reason: "InvalidField",
    violations: [{ field, description }],
  });
}

/** Several violations at once, e.g. from a schema validator. */
export function invalidFields(violations: FieldViolation[]): L0Error {
  const message = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  return new L0Error("InvalidArgument", message, { reason: "InvalidField", violations });
}

export function isL0Error(err: unknown, kind?: ErrorKind): err is L0Error {
  return err instanceof L0Error && (kind === undefined || err.kind === kind);
}
