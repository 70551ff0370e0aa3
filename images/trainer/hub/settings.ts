// The parts of a TrainingRun the hub acts on, resolved once from the validated run (schema
// defaults already applied by lib/run-config.ts). Pure, so tests build settings from objects.
import { type TrainingRun } from "../../../gen/crds/index.js";
import { type l0 } from "../../../lib/proto.js";
import { type Algorithm } from "./advantage.js";
import { DEFAULT_REWARD_WEIGHTS, type RewardWeights } from "./reward.js";

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
}

export function hubSettings(run: TrainingRun): HubSettings {
  const s = run.spec;
  const a = s.algorithm ?? {};
  const r = s.reward ?? {};
  const ag = s.agent ?? {};
  return {
    algorithm: a.name ?? "reinforce_pp",
    groupSize: a.groupSize ?? 8,
    batchSize: a.batchSize ?? 8,
    maxSteps: a.maxSteps ?? 100,
    gamma: a.gamma ?? 1,
    normalizeStd: a.normalizeStd ?? true,
    maxStaleness: a.maxStaleness ?? 0,
    dynamicSampling: a.dynamicSampling ?? true,
    maxOversample: a.maxOversample ?? 3,
    weights: {
      exactMatch: r.exactMatch ?? DEFAULT_REWARD_WEIGHTS.exactMatch,
      f1: r.f1 ?? DEFAULT_REWARD_WEIGHTS.f1,
      hasAnswer: r.hasAnswer ?? DEFAULT_REWARD_WEIGHTS.hasAnswer,
      format: r.format ?? DEFAULT_REWARD_WEIGHTS.format,
      codeExecution: r.codeExecution ?? DEFAULT_REWARD_WEIGHTS.codeExecution,
    },
    agent: {
      maxTurns: ag.maxTurns ?? 8,
      maxTokensPerTurn: ag.maxTokensPerTurn ?? 512,
      contextBudget: ag.contextBudget ?? 8192,
      tools: ag.tools ?? ["search", "notepad"],
      temperature: ag.temperature ?? 1,
      topP: ag.topP ?? 1,
      model: s.model.name,
      cellTimeoutSeconds: ag.cellTimeoutSeconds ?? 10,
      episodeTimeoutSeconds: ag.episodeTimeoutSeconds ?? 300,
    },
    run: {
      namespace: run.metadata?.namespace ?? "",
      name: run.metadata?.name ?? "",
      uid: run.metadata?.uid ?? "",
    },
    dataset: {
      path: s.dataset.path,
      evalPath: s.dataset.evalPath,
      questionField: s.dataset.questionField ?? "question",
      answerField: s.dataset.answerField ?? "answer",
      evalEvery: s.dataset.evalEvery ?? 0,
      evalSize: s.dataset.evalSize ?? 0,
      shuffleSeed: s.dataset.shuffleSeed ?? 0,
    },
  };
}
