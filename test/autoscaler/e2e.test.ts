// End to end: the operator (Manager, real HTTP) against the in-process API server, with the
// BacklogRecommender reading a real hub over gRPC. A backlog appears -> the pool scales up through
// its scale field and the Deployment follows; the hub dies -> replicas hold and Degraded says
// why; a hub with no backlog answers again -> Degraded clears and the pool goes back to min.
// Not covered here: workers draining on SIGTERM and releasing leases (worker pods are simulated
// by test/kube; the worker's drain has its own tests).
import { expect } from "chai";
import { silentLogger } from "../../lib/log.js";
import { createRegistry } from "../../lib/metrics.js";
import { BacklogRecommender } from "../../operator/autoscaler/recommender.js";
import { HubStats } from "../../operator/hub-stats.js";
import { issueRunTls } from "../../operator/run-tls.js";
import { type RunTls, tlsFromSecretData } from "../../lib/tls.js";
import { GrpcStatsSource } from "../../operator/autoscaler/stats-source.js";
import { cond, eventually, getPool, run, startEnv, TR, type Env } from "../operator/harness.js";
import { serve, settings, TOKEN, type Served } from "../hub/helpers.js";

describe("autoscaler end to end (in-process API server, real hub)", function () {
  this.timeout(60_000);
  let env: Env;
  let hub: Served | undefined;
  let hubAddress = "127.0.0.1:1";
  const source = new GrpcStatsSource(new HubStats({ timeoutMs: 500 }));
  let tls: RunTls;

  before(async () => {
    tls = tlsFromSecretData(await issueRunTls({ run: "default/qa", dnsNames: [], now: new Date() }))!;
    env = await startEnv();
  });
  after(async () => {
    source.close();
    await hub?.close();
    await env.stop();
  });

  const pool = () => getPool(env, "qa") as any;
  const deploymentReplicas = () =>
    env.kube.get("apps/v1", "Deployment", "default", "qa-workers")?.spec.replicas;

  it("scales up on a backlog, holds with Degraded when the hub dies, and comes back down when it answers", async () => {
    // 4 questions x 4 samples = 16 episodes; 2 per worker -> 8 workers wanted.
    // The hub speaks the run's mutual TLS, as in a cluster: the operator's client must too.
    hub = await serve({
      settings: settings({ algorithm: { groupSize: 4, batchSize: 4, name: "grpo" } }),
      tls,
    });
    hubAddress = hub.server.address;
    const registry = createRegistry({ defaultMetrics: false });
    await env.startOperator({
      registry,
      recommender: new BacklogRecommender({
        source,
        resolveHub: () => Promise.resolve({ address: hubAddress, token: TOKEN, tls }),
        registry,
        logger: silentLogger(),
      }),
    });
    await env.custom.createNamespacedCustomObject({
      ...TR,
      body: run("qa", {
        workers: {
          episodesPerWorker: 2,
          autoscaling: {
            enabled: true,
            minReplicas: 1,
            maxReplicas: 8,
            targetBacklogPerWorker: 2,
            pollingInterval: 1,
            behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
          },
        },
      }),
    });
    await eventually(() => deploymentReplicas() === 1, "pool at min with no backlog");

    await hub.hub.beginStep(1);
    expect((await hub.rpc.stats()).backlog).to.equal(16);
    // The default rate allows +4 pods per 15 s, so the first 15 s end at 5.
    await eventually(() => pool()?.spec.replicas === 5, "pool scaled up by the backlog");
    await eventually(() => deploymentReplicas() === 5, "deployment follows the pool");
    // The status carries the smoothed backlog the decision used (samples from before the step count).
    const scaled = await eventually(() => pool()?.status?.desiredReplicas === 5 && pool(), "status");
    expect(scaled.status.backlog).to.be.within(1, 16);
    expect(await registry.metrics()).to.match(
      /^l0_autoscaler_decisions_total\{direction="up",reason="\w+"\} [1-9]/m,
    );

    await hub.close();
    hub = undefined;
    const degraded = await eventually(
      () => cond(pool(), "Degraded")?.status === "True" && pool(),
      "Degraded when the hub is gone",
    );
    expect(cond(degraded, "Degraded").reason).to.equal("HubUnreachable");
    expect(degraded.spec.replicas).to.equal(5);
    expect(deploymentReplicas()).to.equal(5);

    hub = await serve({ settings: settings(), tls });
    hubAddress = hub.server.address;
    await eventually(() => cond(pool(), "Degraded")?.status === "False", "Degraded clears");
    // The old samples (backlog 16) leave the 20 s smoothing window first.
    await eventually(() => pool()?.spec.replicas === 1, "back to min with no backlog", 40_000);
    await eventually(() => deploymentReplicas() === 1, "deployment follows down");
  });
});
