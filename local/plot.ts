// The run's plot: reward mean per step and held-out accuracy per evaluation, as an SVG document.
// Pure string building (no DOM, no native canvas) so it runs anywhere Node does.
import { type HistoryRecord } from "../images/trainer/trainer/loop.js";

const W = 720;
const H = 360;
const M = { l: 56, r: 24, t: 36, b: 44 };

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** Pure: SVG of reward (per step) and held-out accuracy (per evaluation) on a 0..1 axis. */
export function plotSvg(history: readonly HistoryRecord[], title: string): string {
  const steps = history.filter((r) => r.kind === "step" && r.rewardMean !== undefined);
  const evals = history.filter((r) => r.kind === "eval" && r.accuracy !== undefined);
  const maxStep = Math.max(1, ...history.map((r) => r.step));
  const values = [...steps.map((r) => r.rewardMean!), ...evals.map((r) => r.accuracy!)];
  const yMax = Math.max(1, ...values);
  const x = (s: number) => M.l + (s / maxStep) * (W - M.l - M.r);
  const y = (v: number) => H - M.b - (Math.max(0, v) / yMax) * (H - M.t - M.b);
  const line = (pts: [number, number][], color: string, dash = "") =>
    pts.length === 0
      ? ""
      : `<polyline fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ""} points="${pts
          .map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`)
          .join(" ")}"/>` +
        pts
          .map(([a, b]) => `<circle cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="3" fill="${color}"/>`)
          .join("");
  const grid: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    grid.push(
      `<line x1="${M.l}" x2="${W - M.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${M.l - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${v.toFixed(2)}</text>`,
    );
  }
  const ticks = Math.min(maxStep, 10);
  for (let i = 0; i <= ticks; i++) {
    const s = Math.round((maxStep * i) / ticks);
    grid.push(`<text x="${x(s)}" y="${H - M.b + 16}" text-anchor="middle" font-size="11">${s}</text>`);
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    ...grid,
    `<line x1="${M.l}" x2="${M.l}" y1="${M.t}" y2="${H - M.b}" stroke="#333"/>`,
    `<line x1="${M.l}" x2="${W - M.r}" y1="${H - M.b}" y2="${H - M.b}" stroke="#333"/>`,
    `<text x="${W / 2}" y="${H - 8}" text-anchor="middle" font-size="12">step</text>`,
    line(
      steps.map((r) => [r.step, r.rewardMean!]),
      "#1f77b4",
    ),
    line(
      evals.map((r) => [r.step, r.accuracy!]),
      "#d62728",
      "6,3",
    ),
    `<rect x="${M.l + 10}" y="${M.t + 4}" width="12" height="3" fill="#1f77b4"/><text x="${M.l + 28}" y="${M.t + 9}" font-size="12">reward mean (train batch)</text>`,
    `<rect x="${M.l + 10}" y="${M.t + 20}" width="12" height="3" fill="#d62728"/><text x="${M.l + 28}" y="${M.t + 25}" font-size="12">held-out accuracy</text>`,
    `</svg>`,
    "",
  ].join("\n");
}
