// spec.evaluation.judge at the boundary: the CRD's schema and CEL reject a judge without held-out
// questions, a URL that is not http(s) and a missing model, naming the field; l0 local refuses a
// run whose judge key is a Secret unless --judge-key-file gives it, and hands that file to the
// trainer where the operator mounts the Secret.
import { expect } from "chai";
import { parseTrainingRun } from "../../lib/run-config.js";
import { trainerPlan } from "../../local/plan.js";
import { checkInputs } from "../../local/preflight.js";
import { runManifest } from "../fixtures/runs.js";

const withJudge = (judge: object, dataset: object = { path: "/d.jsonl", evalPath: "/e.jsonl" }) =>
  runManifest("qa", { dataset, evaluation: { judge } });

describe("spec.evaluation.judge", () => {
  const bad: [string, object, object | undefined, RegExp][] = [
    [
      "a judge without spec.dataset.evalPath",
      { url: "http://j", model: "m" },
      { path: "/d.jsonl" },
      /spec\.evaluation\.judge: needs spec\.dataset\.evalPath/,
    ],
    [
      "a URL that is not http(s)",
      { url: "judge:8000", model: "m" },
      undefined,
      /spec\.evaluation\.judge\.url/,
    ],
    ["no model", { url: "http://j" }, undefined, /spec\.evaluation\.judge\.model/],
    ["an empty model", { url: "http://j", model: "" }, undefined, /spec\.evaluation\.judge\.model/],
    [
      "zero attempts",
      { url: "http://j", model: "m", attempts: 0 },
      undefined,
      /spec\.evaluation\.judge\.attempts/,
    ],
  ];
  for (const [what, judge, dataset, error] of bad)
    it(`rejects ${what}, naming the field`, () => {
      expect(() => parseTrainingRun(withJudge(judge, dataset))).to.throw(error);
    });

  it("accepts a judge and applies the CRD's defaults", () => {
    const j = parseTrainingRun(withJudge({ url: "https://j", model: "m", secretRef: { name: "k" } })).spec
      .evaluation!.judge!;
    expect(j).to.deep.equal({
      url: "https://j",
      model: "m",
      secretRef: { name: "k", key: "apiKey" },
      attempts: 3,
      timeoutSeconds: 60,
      maxConcurrent: 8,
    });
  });

  it("l0 local: a Secret-held key needs --judge-key-file, which the trainer then reads", () => {
    const run = parseTrainingRun(withJudge({ url: "https://j", model: "m", secretRef: { name: "k" } }));
    expect(() => checkInputs(run)).to.throw(/spec\.evaluation\.judge\.secretRef: .*--judge-key-file/);
    const paths = { runDir: "/r", runConfig: "/r/run.json", tokenFile: "/r/token", checkpointDir: "/r/ck" };
    const ports = { hub: 1, engine: 2, metrics: 3 };
    expect(trainerPlan(run, { ...paths, judgeKeyFile: "/home/me/judge.key" }, ports).env).to.include({
      L0_TRAINER_JUDGE_KEY_FILE: "/home/me/judge.key",
    });
    // Without a Secret the trainer gets no key file, as in a cluster.
    const open = parseTrainingRun(withJudge({ url: "https://j", model: "m" }));
    expect(trainerPlan(open, paths, ports).env).not.to.have.property("L0_TRAINER_JUDGE_KEY_FILE");
  });
});
