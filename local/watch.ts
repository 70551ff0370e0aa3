// The progress display of `l0 local`: once a second, the hub's Stats over gRPC (or, before the hub
// serves, the warm start's progress from the trainer log), every fifth second the episode outcome
// counts from the trainer's /metrics. A live line on a terminal, one line per change otherwise.
import * as grpc from "@grpc/grpc-js";
import { call, channelOptions } from "../lib/grpc.js";
import { type l0, RolloutClient } from "../lib/proto.js";
import { episodeOutcomes, progressLine, type ProgressState } from "./progress.js";
import { readWarmProgress, warmLine } from "./supervise.js";

export interface WatchOptions {
  hub: string;
  metricsUrl: string;
  token: string;
  maxSteps: number;
  mode: "auto" | "line" | "plain" | "off";
  /** The current trainer's log (a restarted trainer has the same file). */
  trainerLog: () => string;
  t0: number;
  say: (text: string) => void;
}

/** Starts the display; `stop()` ends it and returns the last episode outcome counts. */
export function watchProgress(o: WatchOptions): { stop: () => Record<string, number> } {
  const rollout = new RolloutClient(o.hub, grpc.credentials.createInsecure(), channelOptions());
  const live = o.mode === "line" || (o.mode === "auto" && process.stdout.isTTY === true);
  const show = (text: string, changed: boolean): void => {
    if (live) process.stdout.write(`\r\x1b[2K${text}`);
    else if (changed) o.say(text);
  };
  const st: ProgressState = { maxSteps: o.maxSteps, startedMs: Date.now(), firstStep: -1 };
  let outcomes: Record<string, number> = {};
  let last = "";
  let lastWarm = -1;
  let ticks = 0;
  const tick = async (): Promise<void> => {
    const s: l0.v1.StatsResponse | null = await call(
      rollout.stats,
      rollout,
      {},
      { token: o.token, timeoutMs: 2000 },
    ).catch(() => null);
    if (!s) {
      // Before the hub serves: the learner's warm start, from its records in the trainer log.
      const w = o.mode === "off" ? undefined : readWarmProgress(o.trainerLog());
      if (w) show(warmLine(w, Date.now() - o.t0), w.step !== lastWarm);
      if (w) lastWarm = w.step;
      return;
    }
    if (st.firstStep < 0) {
      st.firstStep = Number(s.step);
      st.startedMs = Date.now();
    }
    if (ticks++ % 5 === 0)
      outcomes = await fetch(o.metricsUrl)
        .then((r) => r.text())
        .then(episodeOutcomes)
        .catch(() => outcomes);
    if (o.mode === "off") return;
    const key = `${Number(s.step)}/${Number(s.evalAccuracy)}`;
    show(progressLine(s, st, Date.now()), key !== last);
    last = key;
  };
  const timer = setInterval(() => void tick(), 1000);
  return {
    stop: () => {
      clearInterval(timer);
      rollout.close();
      if (live) process.stdout.write("\n");
      return outcomes;
    },
  };
}
