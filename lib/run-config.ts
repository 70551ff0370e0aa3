// Reads a TrainingRun manifest (YAML or JSON; the file the operator mounts from the run's
// ConfigMap as run.json, or the one a user gives `l0 local`), validates it against crds/ with
// defaults applied, and returns it typed. Errors name the file and the field.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { type ResolvedTrainingRun } from "../gen/crds/index.js";
import { createSchemaValidator, readCrds, type SchemaValidator } from "./crd-schema.js";
import { invalidFields } from "./errors.js";

let cached: SchemaValidator | undefined;

/** The validator for the CRDs shipped with this package (crds/ at the package root). */
export function defaultValidator(): SchemaValidator {
  if (!cached) {
    let dir = dirname(fileURLToPath(import.meta.url));
    // lib/ in a checkout, dist/lib/ in an image: crds/ sits at the package root either way.
    const root = dir.endsWith("/dist/lib") ? join(dir, "..", "..") : join(dir, "..");
    dir = join(root, "crds");
    cached = createSchemaValidator(readCrds(dir), { rejectUnknown: true });
  }
  return cached;
}

/** Validates an already-parsed TrainingRun and applies the schema's defaults. */
export function parseTrainingRun(
  obj: unknown,
  source = "TrainingRun",
  validator = defaultValidator(),
): ResolvedTrainingRun {
  if (obj === null || typeof obj !== "object") {
    throw invalidFields([{ field: source, description: "must be a YAML/JSON object" }]);
  }
  const o = obj as Record<string, unknown>;
  if (o.kind !== undefined && o.kind !== "TrainingRun") {
    throw invalidFields([
      { field: `${source}: kind`, description: `must be TrainingRun, got ${JSON.stringify(o.kind)}` },
    ]);
  }
  const { value, violations } = validator.validate("TrainingRun", {
    apiVersion: "l0.dev/v1alpha1",
    kind: "TrainingRun",
    ...o,
  });
  if (violations.length > 0) {
    throw invalidFields(
      violations.map((v) => ({ field: `${source}: ${v.field}`, description: v.description })),
    );
  }
  return value as ResolvedTrainingRun;
}

/** Reads the first TrainingRun from a YAML or JSON file. */
export function readTrainingRun(path: string, validator = defaultValidator()): ResolvedTrainingRun {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw invalidFields([{ field: path, description: `cannot read: ${(err as Error).message}` }]);
  }
  let obj: unknown;
  try {
    obj = parse(text);
  } catch (err) {
    throw invalidFields([{ field: path, description: `not valid YAML/JSON: ${(err as Error).message}` }]);
  }
  return parseTrainingRun(obj, path, validator);
}
