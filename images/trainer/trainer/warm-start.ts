// spec.warmStart -> the learner's warm-start flags. The demonstrations file is the run's input like
// its dataset: a relative path is relative to the run config, and an unreadable file is a
// configuration error naming the field (exit 2, not retried), found before the learner starts.
import { accessSync, constants } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { type ResolvedTrainingRun } from "../../../gen/crds/index.js";
import { invalidField } from "../../../lib/errors.js";

export interface WarmStartFlags {
  sftData: string;
  sftEpochs: number;
  sftBatchSize: number;
  sftLearningRate: number;
}

/** The learner flags of the run's warm start, or {} when it has none or resumes from a checkpoint. */
export function warmStartFlags(
  warm: ResolvedTrainingRun["spec"]["warmStart"],
  runConfigPath: string,
  resuming: boolean,
): WarmStartFlags | Record<string, never> {
  if (!warm || resuming) return {};
  const path = isAbsolute(warm.path) ? warm.path : resolve(dirname(runConfigPath), warm.path);
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    throw invalidField("spec.warmStart.path", `cannot read ${path}: ${(err as Error).message}`);
  }
  return {
    sftData: path,
    sftEpochs: warm.epochs,
    sftBatchSize: warm.batchSize,
    sftLearningRate: warm.learningRate,
  };
}
