// Stats' short-window figures: episodes per second over the last 10 full seconds, engine
// seconds per model turn over recent episodes, and the oldest queued age.
import { expect } from "chai";
import { RecentStats } from "../../images/trainer/hub/recent.js";
import { Hub } from "../../images/trainer/hub/hub.js";
import { createRegistry } from "../../lib/metrics.js";
import { dataset, manualClock, settings } from "./helpers.js";

describe("hub recent stats", () => {
  it("counts completed episodes per second over the last 10 full seconds", () => {
    const clock = manualClock(1_000_000);
    const r = new RecentStats(clock.now);
    for (let s = 0; s < 20; s++) {
      for (let i = 0; i < 3; i++) r.episode([{ llmSeconds: 1 }, { llmSeconds: 2 }]);
      clock.advance(1000);
    }
    expect(r.episodesPerSecond()).to.equal(3);
    expect(r.llmSecondsPerTurn()).to.equal(1.5);
    clock.advance(5000); // five idle seconds: half the window is empty
    expect(r.episodesPerSecond()).to.equal(1.5);
    clock.advance(60_000);
    expect(r.episodesPerSecond()).to.equal(0);
  });

  it("reports the age of the oldest leasable task and the backlog", async () => {
    const clock = manualClock();
    const hub = new Hub({
      settings: settings({ algorithm: { groupSize: 2, batchSize: 2 } }),
      train: dataset(10),
      registry: createRegistry({ defaultMetrics: false }),
      clock: clock.now,
    });
    await hub.beginStep(0);
    clock.advance(2500);
    hub.lease("w", 1);
    const st = hub.stats();
    expect(st).to.deep.include({ queued: 3, leased: 1, backlog: 4, activeWorkers: 1 });
    expect(st.oldestQueuedAgeSeconds).to.equal(2.5);
  });
});
