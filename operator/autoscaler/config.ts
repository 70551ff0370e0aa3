// Maps an AgentWorkerPool's `spec.autoscaling` onto the core's plain AutoscalingConfig, filling
// the defaults and naming the field of anything invalid. Read structurally (not through
// the generated type) so the core keeps working while the CRD field is being written, and so the
// RL options (`sawtooth`, `saturation`, `tolerance`, `smoothingWindowSeconds`) work once added.
import { type FieldViolation, invalidFields } from "../../lib/errors.js";
import {
  type AutoscalingConfig,
  DEFAULT_CONFIG,
  type ScalingPolicy,
  type ScalingRules,
  type SelectPolicy,
  type SizeFrom,
} from "./types.js";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

class Reader {
  readonly problems: FieldViolation[] = [];
  constructor(private readonly base: string) {}

  obj(o: Obj, key: string): Obj {
    const v = o[key];
    if (v === undefined || v === null) return {};
    if (isObj(v)) return v;
    this.problems.push({ field: `${this.base}.${key}`, description: "must be an object" });
    return {};
  }

  num(o: Obj, path: string, key: string, dflt: number, lo: number, hi = Infinity, int = false): number {
    const v = o[key];
    if (v === undefined || v === null) return dflt;
    const field = `${this.base}${path}.${key}`;
    if (typeof v !== "number" || !Number.isFinite(v))
      this.problems.push({ field, description: "must be a number" });
    else if (int && !Number.isInteger(v)) this.problems.push({ field, description: "must be an integer" });
    else if (v < lo || v > hi)
      this.problems.push({ field, description: `must be within [${lo}, ${hi}], got ${v}` });
    else return v;
    return dflt;
  }

  bool(o: Obj, path: string, key: string, dflt: boolean): boolean {
    const v = o[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v === "boolean") return v;
    this.problems.push({ field: `${this.base}${path}.${key}`, description: "must be true or false" });
    return dflt;
  }

  oneOf<T extends string>(o: Obj, path: string, key: string, values: readonly T[], dflt: T): T {
    const v = o[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v === "string" && (values as readonly string[]).includes(v)) return v as T;
    this.problems.push({
      field: `${this.base}${path}.${key}`,
      description: `must be one of ${values.join(", ")}`,
    });
    return dflt;
  }

  rules(o: Obj, path: string, dflt: ScalingRules): ScalingRules {
    const selectPolicy = this.oneOf<SelectPolicy>(
      o,
      path,
      "selectPolicy",
      ["Max", "Min", "Disabled"],
      dflt.selectPolicy,
    );
    const stabilizationWindowSeconds = this.num(
      o,
      path,
      "stabilizationWindowSeconds",
      dflt.stabilizationWindowSeconds,
      0,
      3600,
      true,
    );
    let policies = dflt.policies;
    if (Array.isArray(o.policies) && o.policies.length > 0) {
      policies = o.policies.map((p: unknown, i): ScalingPolicy => {
        const at = `${path}.policies[${i}]`;
        const po = isObj(p) ? p : {};
        if (!isObj(p)) this.problems.push({ field: `${this.base}${at}`, description: "must be an object" });
        return {
          type: this.oneOf(po, at, "type", ["Pods", "Percent"], "Pods"),
          value: this.num(po, at, "value", 1, 1, Infinity, true),
          periodSeconds: this.num(po, at, "periodSeconds", 15, 1, 1800, true),
        };
      });
    } else if (o.policies !== undefined && !Array.isArray(o.policies)) {
      this.problems.push({ field: `${this.base}${path}.policies`, description: "must be a list" });
    }
    return { selectPolicy, stabilizationWindowSeconds, policies };
  }
}

export interface PoolLike {
  spec: { replicas?: number; episodesPerWorker?: number; autoscaling?: unknown };
}

/** The pool's autoscaling config with defaults; throws InvalidArgument naming each bad field. */
export function autoscalingConfig(pool: PoolLike): AutoscalingConfig {
  const r = new Reader("spec.autoscaling");
  const raw = pool.spec.autoscaling;
  const a: Obj = isObj(raw) ? raw : {};
  if (raw !== undefined && !isObj(raw))
    r.problems.push({ field: "spec.autoscaling", description: "must be an object" });
  const d = DEFAULT_CONFIG;
  const minReplicas = r.num(a, "", "minReplicas", d.minReplicas, 0, 10_000, true);
  const maxReplicas = r.num(a, "", "maxReplicas", d.maxReplicas, 1, 10_000, true);
  if (minReplicas > maxReplicas)
    r.problems.push({
      field: "spec.autoscaling.minReplicas",
      description: `must be <= maxReplicas (${maxReplicas})`,
    });
  const behavior = r.obj(a, "behavior");
  const sawtooth = r.obj(a, "sawtooth");
  const saturation = r.obj(a, "saturation");
  const fallback = a.fallback === undefined ? undefined : r.obj(a, "fallback");
  const cfg: AutoscalingConfig = {
    enabled: r.bool(a, "", "enabled", false),
    minReplicas,
    maxReplicas,
    targetBacklogPerWorker: r.num(a, "", "targetBacklogPerWorker", d.targetBacklogPerWorker, 1e-9),
    tolerance: r.num(a, "", "tolerance", d.tolerance, 0, 1),
    pollingIntervalSeconds: r.num(a, "", "pollingInterval", d.pollingIntervalSeconds, 1, 3600, true),
    smoothingWindowSeconds: r.num(a, "", "smoothingWindowSeconds", d.smoothingWindowSeconds, 0, 3600),
    episodesPerWorker:
      typeof pool.spec.episodesPerWorker === "number" ? pool.spec.episodesPerWorker : d.episodesPerWorker,
    behavior: {
      scaleUp: r.rules(
        isObj(behavior.scaleUp) ? behavior.scaleUp : {},
        ".behavior.scaleUp",
        d.behavior.scaleUp,
      ),
      scaleDown: r.rules(
        isObj(behavior.scaleDown) ? behavior.scaleDown : {},
        ".behavior.scaleDown",
        d.behavior.scaleDown,
      ),
    },
    fallback: fallback && {
      failureThreshold: r.num(fallback, ".fallback", "failureThreshold", 3, 1, Infinity, true),
      replicas: r.num(fallback, ".fallback", "replicas", minReplicas, 0, 10_000, true),
    },
    sawtooth: {
      sizeFrom: r.oneOf<SizeFrom>(
        sawtooth,
        ".sawtooth",
        "sizeFrom",
        ["Backlog", "StepPeak"],
        d.sawtooth.sizeFrom,
      ),
      peakSteps: r.num(sawtooth, ".sawtooth", "peakSteps", d.sawtooth.peakSteps, 1, 100, true),
      releaseDuringTraining: r.bool(
        sawtooth,
        ".sawtooth",
        "releaseDuringTraining",
        d.sawtooth.releaseDuringTraining,
      ),
      podStartSeconds: r.num(sawtooth, ".sawtooth", "podStartSeconds", d.sawtooth.podStartSeconds, 0, 3600),
    },
    saturation: {
      enabled: r.bool(saturation, ".saturation", "enabled", d.saturation.enabled),
      efficiencyDrop: r.num(
        saturation,
        ".saturation",
        "efficiencyDrop",
        d.saturation.efficiencyDrop,
        0.01,
        0.99,
      ),
      latencyRise: r.num(saturation, ".saturation", "latencyRise", d.saturation.latencyRise, 0, 100),
      memorySeconds: r.num(
        saturation,
        ".saturation",
        "memorySeconds",
        d.saturation.memorySeconds,
        60,
        86_400,
      ),
      settleSeconds: r.num(saturation, ".saturation", "settleSeconds", d.saturation.settleSeconds, 0, 3600),
    },
  };
  if (r.problems.length > 0) throw invalidFields(r.problems);
  return cfg;
}
