// The recommender the AgentWorkerPool reconciler calls, against a real Rollout server on
// loopback: Stats over gRPC with the run token and a deadline, decisions, Degraded when the hub
// is unreachable, metrics on the injected registry, and per-pool state that can be forgotten.
import { type AddressInfo, createServer } from "node:net";
import { expect } from "chai";
import { Writable } from "node:stream";
import { type ResolvedAgentWorkerPool } from "../../gen/crds/index.js";
import { resolvedPool } from "../fixtures/runs.js";
import { startServer, unary, type StartedServer } from "../../lib/grpc.js";
import { createLogger, silentLogger } from "../../lib/log.js";
import { createRegistry } from "../../lib/metrics.js";
import { l0, RolloutService, type RolloutHandlers } from "../../lib/proto.js";
import { L0Error } from "../../lib/errors.js";
import { BacklogRecommender } from "../../operator/autoscaler/recommender.js";
import { HubStats } from "../../operator/hub-stats.js";
import { GrpcStatsSource, toSample } from "../../operator/autoscaler/stats-source.js";
import { T0 } from "./builders.js";

const TOKEN = "run-token-autoscale";

function makePool(name: string, autoscaling: Record<string, unknown>, replicas = 2): ResolvedAgentWorkerPool {
  const pool = resolvedPool(
    { replicas, episodesPerWorker: 8, autoscaling: { enabled: true, ...autoscaling } },
    name,
  );
  return { ...pool, metadata: { namespace: "ml", name } };
}

describe("BacklogRecommender over real gRPC", () => {
  let server: StartedServer;
  let stats: l0.v1.IStatsResponse;
  let calls: number;
  const source = new GrpcStatsSource(new HubStats({ timeoutMs: 1000 }));

  before(async () => {
    const unused = () => {
      throw new L0Error("FailedPrecondition", "not used by the autoscaler");
    };
    const handlers: RolloutHandlers = {
      stats: unary({ token: TOKEN }, "Stats", () => {
        calls++;
        return stats;
      }),
      lease: unary({ token: TOKEN }, "Lease", unused),
      heartbeat: unary({ token: TOKEN }, "Heartbeat", unused),
      release: unary({ token: TOKEN }, "Release", unused),
      submit: unary({ token: TOKEN }, "Submit", unused),
    };
    server = await startServer((s) => s.addService(RolloutService, handlers), { host: "127.0.0.1", port: 0 });
  });
  after(async () => {
    source.close();
    await server.stop(100);
  });
  beforeEach(() => {
    calls = 0;
    stats = {
      queued: 100,
      leased: 60,
      backlog: 160,
      phase: l0.v1.HubPhase.HUB_PHASE_ROLLOUT,
      step: 3,
      activeWorkers: 2,
    };
  });

  const recommender = (address = server.address, token = TOKEN) => {
    const registry = createRegistry({ defaultMetrics: false });
    const r = new BacklogRecommender({
      source,
      resolveHub: () => Promise.resolve({ address, token }),
      registry,
      logger: silentLogger(),
    });
    return { r, registry };
  };

  it("scales up from the hub's backlog and asks to be requeued at the polling interval", async () => {
    const { r, registry } = recommender();
    const rec = await r.recommend(makePool("a", { maxReplicas: 40, pollingInterval: 15 }), new Date(T0));
    // backlog 160 / 8 = 20 workers; the default rate allows 2 -> 6 (+4 pods) now.
    expect(rec).to.deep.include({
      replicas: 6,
      reason: "ScaleUpLimit",
      backlog: 160,
      requeueAfterMs: 15_000,
    });
    expect(rec.degraded).to.equal(undefined);
    expect(calls).to.equal(1);
    const text = await registry.metrics();
    expect(text).to.match(/^l0_autoscaler_desired_replicas\{namespace="ml",pool="a"\} 6$/m);
    expect(text).to.match(/^l0_autoscaler_decisions_total\{direction="up",reason="ScaleUpLimit"\} 1$/m);
  });

  it("holds replicas and reports Degraded with a wrong token (no retry inside the call)", async () => {
    const { r } = recommender(server.address, "wrong-token");
    const rec = await r.recommend(makePool("b", {}), new Date(T0));
    expect(rec).to.deep.include({ replicas: 2, reason: "HubUnreachable" });
    expect(rec.degraded?.message).to.contain("run token");
  });

  it("holds replicas when the hub never answers (the call has a deadline)", async () => {
    // Accepts connections and never answers: only the call's deadline can end the read.
    const silent = createServer(() => undefined);
    await new Promise<void>((res) => silent.listen(0, "127.0.0.1", res));
    const { r, registry } = recommender(`127.0.0.1:${(silent.address() as AddressInfo).port}`);
    const rec = await r.recommend(makePool("c", {}, 4), new Date(T0)).finally(() => silent.close());
    expect(rec.message).to.match(/deadline/i);
    expect(rec).to.deep.include({ replicas: 4, reason: "HubUnreachable" });
    expect(rec.degraded?.reason).to.equal("HubUnreachable");
    expect(await registry.metrics()).to.match(
      /^l0_autoscaler_decisions_total\{direction="none",reason="HubUnreachable"\} 1$/m,
    );
  });

  it("follows the configured fallback after failureThreshold failures", async () => {
    const { r } = recommender("127.0.0.1:1");
    const pool = makePool("d", { fallback: { failureThreshold: 2, replicas: 5 } }, 3);
    expect((await r.recommend(pool, new Date(T0))).replicas).to.equal(3);
    const rec = await r.recommend(pool, new Date(T0 + 10_000));
    expect(rec).to.deep.include({ replicas: 5, reason: "HubUnreachable" });
  });

  it("warns once when a pool starts being held, not at every poll", async () => {
    const lines: { level: string; message: string }[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as { level: string; message: string });
        done();
      },
    });
    const r = new BacklogRecommender({
      source,
      resolveHub: () => Promise.resolve({ address: "127.0.0.1:1", token: TOKEN }),
      registry: createRegistry({ defaultMetrics: false }),
      logger: createLogger({ component: "test", level: "debug", format: "json", stream }),
    });
    const pool = makePool("w", {}, 3);
    for (let i = 0; i < 4; i++) await r.recommend(pool, new Date(T0 + i * 10_000));
    const held = lines.filter((l) => l.message === "autoscaler holding pool");
    expect(held.map((l) => l.level)).to.deep.equal(["warn"]);
    expect(
      lines.filter((l) => l.level === "debug" && l.message === "autoscaler decision").length,
    ).to.be.at.least(2);
  });

  it("leaves disabled pools alone without calling the hub", async () => {
    const { r } = recommender();
    const rec = await r.recommend(makePool("e", { enabled: false }, 7), new Date(T0));
    expect(rec).to.deep.include({ replicas: 7, reason: "Disabled" });
    expect(calls).to.equal(0);
  });

  it("keeps state per pool across calls and forgets it (and its series) on delete", async () => {
    const { r, registry } = recommender();
    const pool = makePool("g", { maxReplicas: 40 }, 10);
    stats = { ...stats, backlog: 80 };
    await r.recommend(pool, new Date(T0));
    stats = { ...stats, backlog: 0 };
    // The scale-down window remembers 10 from the first call.
    expect((await r.recommend(pool, new Date(T0 + 10_000))).replicas).to.equal(10);
    r.forget("ml", "g");
    expect(await registry.metrics()).to.not.match(/pool="g"/);
  });

  it("maps StatsResponse to a plain sample", () => {
    const s = toSample(
      { backlog: 7, phase: l0.v1.HubPhase.HUB_PHASE_TRAINING, llmSecondsPerTurn: 1.5, step: 4 },
      T0,
    );
    expect(s).to.deep.equal({
      at: T0,
      backlog: 7,
      phase: "Training",
      step: 4,
      episodesPerSecond: 0,
      activeWorkers: 0,
      llmSecondsPerTurn: 1.5,
    });
    expect(toSample({ phase: 99 as l0.v1.HubPhase }, T0).phase).to.equal("Unknown");
  });
});
