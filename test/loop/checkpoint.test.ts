// The loop's checkpoints: one directory per step, complete only with its marker, `latest` moved
// atomically, resume from the newest complete one, pruning keeps the newest.
import { silentLogger } from "../../lib/log.js";
import { EngineRegistry } from "../../images/trainer/weights/engines.js";
import {
  PUBLISHED_FILE,
  enginesHold,
  highestExport,
  minVersion,
  readPublished,
  writePublished,
} from "../../images/trainer/trainer/versions.js";
import { expect } from "chai";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  MARKER,
  beginSave,
  commitSave,
  completeSteps,
  findLatest,
  stepDirName,
  toPrune,
} from "../../images/trainer/trainer/checkpoint.js";

describe("trainer checkpoints", () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), "l0-ck-"))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("names step directories so they sort", () => {
    expect(stepDirName(7)).to.equal("step-000007");
    expect(stepDirName(1234567)).to.equal("step-1234567");
  });

  const cases: { names: string[]; complete: string[]; want: number[] }[] = [
    { names: [], complete: [], want: [] },
    { names: ["step-000001", "step-000002"], complete: ["step-000001"], want: [1] },
    {
      names: ["step-000003", "x", "step-000010", "latest"],
      complete: ["step-000003", "step-000010"],
      want: [10, 3],
    },
  ];
  for (const c of cases)
    it(`complete steps of [${c.names.join(", ")}]`, () =>
      expect(completeSteps(c.names, (n) => c.complete.includes(n))).to.deep.equal(c.want));

  it("prunes all but the newest `keep` (and never the newest)", () => {
    expect(toPrune([1, 5, 3], 2, 5)).to.deep.equal([1]);
    expect(toPrune([1, 5, 3], 0, 5)).to.deep.equal([3, 1]);
    expect(toPrune([4], 3, 4)).to.deep.equal([]);
    // A new attempt (resume: false) committing step 0 over an old attempt's 30, 40, 50: the old
    // ones go, the committed one stays, whatever `keep` says.
    expect(toPrune([0, 30, 40, 50], 3, 0)).to.deep.equal([50, 40, 30]);
    expect(toPrune([0, 1, 2, 40, 50], 2, 2)).to.deep.equal([50, 40, 0]);
  });

  it("resumes from the newest complete checkpoint; an interrupted save does not count", () => {
    expect(findLatest(join(root, "missing"))).to.equal(null);
    for (const s of [1, 2]) {
      const dir = beginSave(root, s);
      writeFileSync(join(dir, "hub-state.json"), "{}");
      commitSave(root, s, 3);
    }
    expect(readFileSync(join(root, "latest"), "utf8").trim()).to.equal("step-000002");
    beginSave(root, 3); // crashed before COMPLETE
    expect(findLatest(root)).to.deep.equal({ step: 2, dir: join(root, "step-000002") });
    // A pointer at a directory that lost its marker falls back to scanning.
    rmSync(join(root, "step-000002", MARKER));
    expect(findLatest(root)?.step).to.equal(1);
  });

  it("keeps `keep` complete checkpoints", () => {
    for (const s of [1, 2, 3, 4]) {
      beginSave(root, s);
      commitSave(root, s, 2);
    }
    expect(existsSync(join(root, "step-000001"))).to.equal(false);
    expect(existsSync(join(root, "step-000002"))).to.equal(false);
    expect(findLatest(root)?.step).to.equal(4);
    mkdirSync(join(root, "step-000009")); // incomplete leftovers are not pruned by count
    expect(findLatest(root)?.step).to.equal(4);
  });
});

describe("policy versions are never reused across trainer restarts", () => {
  let root: string;
  let exports: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "l0-versions-"));
    exports = join(root, "export");
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("starts a learner above every version published or left in the export directory", () => {
    expect(minVersion(root, exports)).to.equal(1); // fresh: version 0 is never published
    writePublished(root, 6);
    writePublished(root, 4); // never goes down
    expect(readPublished(root)).to.equal(6);
    expect(minVersion(root, exports)).to.equal(7);
    // An export directory lost with its pod is covered by the record; one that stayed (l0 local,
    // --fresh) covers a lost record, including an export cut short.
    mkdirSync(join(exports, "9"), { recursive: true });
    mkdirSync(join(exports, ".12.tmp-abc"), { recursive: true });
    mkdirSync(join(exports, "notes"), { recursive: true });
    expect(highestExport(exports)).to.equal(12);
    expect(minVersion("", exports)).to.equal(13);
    writeFileSync(join(root, PUBLISHED_FILE), "garbage\n");
    expect(readPublished(root)).to.equal(0);
    // Both lost with the pod (emptyDirs): the running engines' reports still count.
    expect(minVersion(join(root, "gone"), join(root, "gone-too"), 50)).to.equal(51);
  });

  it("reads what the engines hold, waiting for the replicas' reports but not forever", async () => {
    const reg = new EngineRegistry({ logger: silentLogger() });
    setTimeout(() => {
      reg.report({ engineId: "a", version: 7, state: "Serving", targetVersion: 7, detail: "" });
      reg.report({ engineId: "b", version: 7, state: "Syncing", targetVersion: 9, detail: "" });
    }, 150);
    expect(await enginesHold(reg, 2, 5000)).to.equal(9); // a version being pulled counts too
    expect(await enginesHold(reg, 3, 300)).to.equal(9); // a replica that never reports: the wait ends
    expect(await enginesHold(new EngineRegistry({ logger: silentLogger() }), 1, 50)).to.equal(0);
  });
});
