// The parts of a TrainingRun the hub acts on, taken from the resolved run (lib/run-config.ts
// applied the CRD's defaults: nothing here restates one). Pure, so tests build settings from objects.
import { type ResolvedTrainingRun } from "../../../gen/crds/index.js";
import { type l0 } from "../../../lib/proto.js";
import { type Algorithm } from "./advantage.js";
import { type RewardWeights } from "./reward.js";

export interface HubSettings {
  algorithm: Algorithm;
  groupSize: number;
  batchSize: number;
  maxSteps: number;
  gamma: number;
  normalizeStd: boolean;
  maxStaleness: number;
  dynamicSampling: boolean;
  maxOversample: number;
  weights: RewardWeights;
  agent: l0.v1.IAgentSettings;
  run: l0.v1.IRunRef;
  dataset: {
    path: string;
    evalPath?: string;
    questionField: string;
    answerField: string;
    evalEvery: number;
    evalSize: number;
    shuffleSeed: number;
  };
  /** spec.evaluation.judge: the in-run evaluation's judge; its API key is read by the trainer (secretRef). */
  judge?: {
    url: string;
    model: string;
    attempts: number;
    timeoutMs: number;
    maxConcurrent: number;
    /** Whether the run names a Secret for the key (the trainer then requires its file). */
    keyed: boolean;
  };
}

export function hubSettings(run: ResolvedTrainingRun): HubSettings {
  const { algorithm: a, reward: r, agent: ag, dataset: d } = run.spec;
  const j = run.spec.evaluation?.judge;
  return {
    algorithm: a.name,
    groupSize: a.groupSize,
    batchSize: a.batchSize,
    maxSteps: a.maxSteps,
    gamma: a.gamma,
    normalizeStd: a.normalizeStd,
    maxStaleness: a.maxStaleness,
    dynamicSampling: a.dynamicSampling,
    maxOversample: a.maxOversample,
    weights: {
      exactMatch: r.exactMatch,
      f1: r.f1,
      hasAnswer: r.hasAnswer,
      format: r.format,
      codeExecution: r.codeExecution,
    },
    agent: {
      maxTurns: ag.maxTurns,
      maxTokensPerTurn: ag.maxTokensPerTurn,
      contextBudget: ag.contextBudget,
      tools: ag.tools,
      temperature: ag.temperature,
      topP: ag.topP,
      model: run.spec.model.name,
      cellTimeoutSeconds: ag.cellTimeoutSeconds,
      episodeTimeoutSeconds: ag.episodeTimeoutSeconds,
    },
    run: {
      namespace: run.metadata?.namespace ?? "",
      name: run.metadata?.name ?? "",
      uid: run.metadata?.uid ?? "",
    },
    dataset: {
      path: d.path,
      evalPath: d.evalPath,
      questionField: d.questionField,
      answerField: d.answerField,
      evalEvery: d.evalEvery,
      evalSize: d.evalSize,
      shuffleSeed: d.shuffleSeed,
    },
    ...(j
      ? {
          judge: {
            url: j.url,
            model: j.model,
            attempts: j.attempts,
            timeoutMs: j.timeoutSeconds * 1000,
            maxConcurrent: j.maxConcurrent,
            keyed: j.secretRef !== undefined,
          },
        }
      : {}),
  };
}
