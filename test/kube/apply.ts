// Server-side apply (application/apply-patch+yaml). Not implemented yet: the operator writes
// with create/update and merge/strategic patches, so apply answers 415 like a server without it.
import { unsupportedMediaType } from "./errors.js";
import { type Store } from "./store.js";
import { type Obj, type ResourceType } from "./types.js";

export interface ApplyOptions {
  fieldManager: string;
  force: boolean;
  dryRun: boolean;
  subresource?: string;
}

export class ApplyManager {
  constructor(readonly store: Store) {}

  apply(
    _t: ResourceType,
    _ns: string,
    _name: string,
    _patch: unknown,
    _opts: ApplyOptions,
  ): { object: Obj; created: boolean } {
    throw unsupportedMediaType([
      "application/json-patch+json",
      "application/merge-patch+json",
      "application/strategic-merge-patch+json",
    ]);
  }

  /** Hook after a non-apply write (managed fields bookkeeping once apply exists). */
  afterUpdate(
    _t: ResourceType,
    _ns: string,
    _name: string,
    _before: Obj,
    _after: Obj,
    _manager: string,
  ): void {}
}
