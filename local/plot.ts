// The run's plot: reward mean per step and held-out accuracy per evaluation. `plotSpec` builds a
// Vega-Lite chart from the history (pure, tested on its data); `plotSvg` renders it with Vega's
// headless SVG renderer (no DOM, no native canvas), so it runs anywhere Node does.
import * as vega from "vega";
import { type TopLevelSpec, compile } from "vega-lite";
import { type HistoryRecord } from "../images/trainer/trainer/record.js";

export const SERIES = {
  reward: "reward mean (train batch)",
  accuracy: "held-out accuracy",
} as const;

export interface PlotPoint {
  step: number;
  value: number;
  series: (typeof SERIES)[keyof typeof SERIES];
}

/** Pure: one point per step record (reward) and per evaluation (accuracy). */
export function plotPoints(history: readonly HistoryRecord[]): PlotPoint[] {
  const out: PlotPoint[] = [];
  for (const r of history) {
    if (r.kind === "step" && r.rewardMean !== undefined)
      out.push({ step: r.step, value: r.rewardMean, series: SERIES.reward });
    if (r.kind === "eval" && r.accuracy !== undefined)
      out.push({ step: r.step, value: r.accuracy, series: SERIES.accuracy });
  }
  return out;
}

/** Pure: the Vega-Lite chart of the history, reward and accuracy on one 0..1 axis. */
export function plotSpec(history: readonly HistoryRecord[], title: string): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    width: 640,
    height: 300,
    background: "white",
    data: { values: plotPoints(history) },
    mark: { type: "line", point: true, strokeWidth: 2 },
    encoding: {
      x: { field: "step", type: "quantitative", title: "step" },
      y: { field: "value", type: "quantitative", title: null, scale: { domainMin: 0 } },
      color: {
        field: "series",
        type: "nominal",
        title: null,
        scale: { domain: [SERIES.reward, SERIES.accuracy], range: ["#1f77b4", "#d62728"] },
        legend: { orient: "top-left", labelLimit: 400 },
      },
      strokeDash: {
        field: "series",
        type: "nominal",
        scale: {
          domain: [SERIES.reward, SERIES.accuracy],
          range: [
            [1, 0],
            [6, 3],
          ],
        },
        title: null,
      },
    },
  };
}

/** The chart as an SVG document. */
export async function plotSvg(history: readonly HistoryRecord[], title: string): Promise<string> {
  const spec = compile(plotSpec(history, title)).spec;
  const view = new vega.View(vega.parse(spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
