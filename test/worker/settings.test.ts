// The agent settings a task carries are checked at the worker's boundary: complete settings
// pass through, a missing or out-of-range field is an error naming it (no silent default).
import { expect } from "chai";
import { agentLimits } from "../../images/worker/agent/settings.js";
import { L0Error } from "../../lib/errors.js";
import { agentSettings } from "../fixtures/runs.js";

describe("worker: agent settings from the task", () => {
  it("takes the resolved run's settings as they are", () => {
    const a = agentLimits(agentSettings({ maxTurns: 3, cellTimeoutSeconds: 2.5, temperature: 0 }));
    expect(a).to.include({ maxTurns: 3, cellTimeoutMs: 2500, temperature: 0, model: "tiny" });
    expect(a.tools).to.deep.equal(["search", "notepad"]);
  });

  const bad: [string, object, RegExp][] = [
    ["no settings at all", {}, /task\.agent\.maxTurns: must be > 0, got nothing/],
    ["a zero max turns (proto3's unset)", { maxTurns: 0 }, /task\.agent\.maxTurns: must be > 0, got 0/],
    ["a zero top-p", { topP: 0 }, /task\.agent\.topP/],
    ["no model", { model: "" }, /task\.agent\.model: is required/],
    ["a negative temperature", { temperature: -1 }, /task\.agent\.temperature: must be >= 0/],
  ];
  for (const [what, over, msg] of bad)
    it(`refuses ${what}, naming the field`, () => {
      const agent = Object.keys(over).length === 0 ? {} : agentSettings(over);
      expect(() => agentLimits(agent)).to.throw(L0Error, msg);
    });
});
