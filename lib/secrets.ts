// Secrets (the run token, API keys) are read from files the operator mounts, never from flag
// values (visible in `ps`). One reader for every program; the error names the flag.
import { readFileSync } from "node:fs";
import { invalidField } from "./errors.js";

/** Reads a non-empty secret from `path`; `field` names the flag, e.g. "--token-file (L0_HUB_TOKEN_FILE)". */
export function readSecretFile(path: string, field: string): string {
  let value: string;
  try {
    value = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw invalidField(field, `cannot read ${path}: ${(err as Error).message}`);
  }
  if (!value) throw invalidField(field, `${path} is empty`);
  return value;
}
