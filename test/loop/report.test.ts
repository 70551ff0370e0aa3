// The local run's report: history parsing (resumed runs repeat steps), the summary, the progress
// line, outcome counts from /metrics text, the plot, and the loop's schedule.
import { expect } from "chai";
import { scheduleAfter } from "../../images/trainer/trainer/loop.js";
import { type PlotPoint, SERIES, plotSpec, plotSvg } from "../../local/plot.js";
import { episodeOutcomes, eta, formatDuration, progressLine } from "../../local/progress.js";
import { parse } from "yaml";
import { formatSummary, parseHistory, summarize, summaryTable } from "../../local/summary.js";

const HISTORY = [
  { kind: "eval", step: 0, policyVersion: 5, unixMs: 1, accuracy: 0.25 },
  { kind: "step", step: 1, policyVersion: 6, unixMs: 2, rewardMean: 0.2, logprobGap: 0.01 },
  { kind: "step", step: 2, policyVersion: 7, unixMs: 3, rewardMean: 0.3 },
  "{ cut by a crash",
  // resumed from step 1: step 2 again, the last record wins
  { kind: "step", step: 2, policyVersion: 7, unixMs: 4, rewardMean: 0.4, logprobGap: 0.03 },
  { kind: "eval", step: 2, policyVersion: 7, unixMs: 5, accuracy: 0.6 },
]
  .map((r) => (typeof r === "string" ? r : JSON.stringify(r)))
  .join("\n");

describe("l0 local report", () => {
  it("parses history: last record of a repeated step wins, broken lines are skipped", () => {
    const h = parseHistory(HISTORY);
    expect(h.map((r) => `${r.kind}${r.step}`)).to.deep.equal(["eval0", "step1", "step2", "eval2"]);
    expect(h[2]!.rewardMean).to.equal(0.4);
  });

  it("summarizes accuracy before -> after, steps, episodes and failures by reason", () => {
    const s = summarize(parseHistory(HISTORY), { answered: 30, max_turns: 8, sandbox_failure: 2 }, 100);
    expect(s).to.include({ accuracyBefore: 0.25, accuracyAfter: 0.6, steps: 2, episodes: 40 });
    expect(s.failures).to.deep.equal({ max_turns: 8, sandbox_failure: 2 });
    expect(s.episodesPerSecond).to.be.closeTo(0.4, 1e-9);
    const table = summaryTable(s);
    expect(table).to.match(/held-out accuracy\s+25\.0% -> 60\.0%/);
    expect(table).to.match(/max_turns 8, sandbox_failure 2/);
    expect(table).to.match(/engine vs trainer log-prob gap\s+0\.0200 per token/);
    // --output json|yaml: the same object, for scripts.
    expect(JSON.parse(formatSummary(s, "json"))).to.deep.equal(s);
    expect(parse(formatSummary(s, "yaml"))).to.deep.equal(s);
    expect(formatSummary(s, "table")).to.equal(table);
  });

  it("carries the held-out scores of l0 eval's summary, and the judge's when the run has one", () => {
    const judge = (correct: number, incorrect: number) => ({
      correct,
      incorrect,
      notAttempted: 1,
      failed: 2,
      accuracy: correct / (correct + incorrect + 1),
      accuracyGivenAttempted: correct / (correct + incorrect),
      fScore: 0.5,
    });
    const evals = [
      {
        kind: "eval",
        step: 0,
        policyVersion: 1,
        unixMs: 1,
        accuracy: 0.2,
        em: 0.2,
        f1: 0.3,
        reward: 0.25,
        judge: judge(1, 3),
      },
      {
        kind: "eval",
        step: 4,
        policyVersion: 5,
        unixMs: 2,
        accuracy: 0.6,
        em: 0.6,
        f1: 0.7,
        reward: 0.65,
        judge: judge(3, 1),
      },
    ];
    const s = summarize(parseHistory(evals.map((r) => JSON.stringify(r)).join("\n")), {}, 10);
    expect(s.heldOutBefore).to.deep.equal({ step: 0, em: 0.2, f1: 0.3, reward: 0.25, judge: judge(1, 3) });
    expect(s.heldOutAfter).to.deep.include({ step: 4, f1: 0.7, reward: 0.65 });
    expect(s.heldOutAfter!.judge).to.deep.include({ correct: 3, incorrect: 1, notAttempted: 1, failed: 2 });
    const table = summaryTable(s);
    expect(table).to.match(/held-out F1\s+30\.0% -> 70\.0%/);
    expect(table).to.match(/judge correct\/incorrect\/not attempted\/failed\s+1\/3\/1\/2 -> 3\/1\/1\/2/);
    expect(table).to.match(/judge accuracy given attempted\s+25\.0% -> 75\.0%/);
    // Without a judge: no judge rows (the history of a run without spec.evaluation.judge).
    expect(summaryTable(summarize(parseHistory(HISTORY), {}, 10))).not.to.match(/judge/);
  });

  it("reads episode outcomes from Prometheus text", () => {
    const text = [
      "# HELP l0_episodes_total x",
      'l0_episodes_total{outcome="answered",component="trainer"} 12',
      'l0_episodes_total{component="trainer",outcome="lease_expired"} 3',
      'l0_episode_duration_seconds_bucket{le="1"} 4',
    ].join("\n");
    expect(episodeOutcomes(text)).to.deep.equal({ answered: 12, lease_expired: 3 });
  });

  it("shows step, reward, held-out accuracy, episodes/s, backlog and ETA in one line", () => {
    const st = { maxSteps: 10, startedMs: 0, firstStep: 2 };
    expect(eta(2, st, 60_000)).to.be.NaN;
    expect(eta(4, st, 60_000)).to.equal(180); // 30 s per step, 6 to go
    const line = progressLine(
      { step: 4, phase: 2, rewardMean: 0.5, evalAccuracy: 0.4, episodesPerSecond: 1.25, backlog: 7 },
      st,
      60_000,
    );
    expect(line).to.equal(
      "step 4/10 | rollout | reward 0.500 | held-out 40.0% | 1.25 ep/s | backlog 7 | elapsed 1m00s | ETA 3m00s",
    );
    expect(formatDuration(NaN)).to.equal("?");
  });

  it("plots reward per step and held-out accuracy per evaluation, rendered to SVG by Vega", async () => {
    const h = parseHistory(HISTORY);
    const values = (plotSpec(h, "t").data as { values: PlotPoint[] }).values;
    expect(values.map((p) => [p.series, p.step, p.value])).to.deep.equal([
      [SERIES.accuracy, 0, 0.25],
      [SERIES.reward, 1, 0.2],
      [SERIES.reward, 2, 0.4],
      [SERIES.accuracy, 2, 0.6],
    ]);
    const svg = await plotSvg(h, "t <run>");
    expect(svg.startsWith("<svg")).to.equal(true);
    expect(svg).to.contain("t &lt;run&gt;");
    for (const label of Object.values(SERIES)) expect(svg).to.contain(`>${label}</text>`);
    // One point per record, one line per series.
    expect(svg.match(/aria-roledescription="point"/g)).to.have.length(4);
    expect(svg.match(/aria-roledescription="line mark"/g)).to.have.length(2);
  });

  it("schedules evaluations and checkpoints every N steps, not at the last", () => {
    expect([1, 2, 3, 4, 5, 6].filter((s) => scheduleAfter(s, 6, 2))).to.deep.equal([2, 4]);
    expect(scheduleAfter(3, 6, 0)).to.equal(false);
  });
});
