// The proto pipeline for real: generated messages round-trip, and the generated grpc-js
// service definitions carry calls between a real server and client on loopback.
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { l0, RolloutClient, RolloutService, type RolloutHandlers } from "../../lib/proto.js";
import { call, channelOptions, startServer, unary, type StartedServer } from "../../lib/grpc.js";
import { invalidField, L0Error } from "../../lib/errors.js";

describe("generated protocol", () => {
  it("round-trips a trajectory with token ids, logprobs and enums through encode/decode", () => {
    const t: l0.v1.ITrajectory = {
      trajectoryId: "lease-1",
      taskId: "task-1",
      policyVersion: 2 ** 40,
      turns: [
        {
          promptTokenIds: [1, 2, 300000],
          responseTokenIds: [7, 8],
          responseLogprobs: [-0.5, -1.25],
          code: "print(1)",
          outcome: l0.v1.ExecOutcome.EXEC_OUTCOME_TIMEOUT,
        },
      ],
      end: l0.v1.EpisodeEnd.EPISODE_END_SANDBOX_FAILURE,
    };
    const back = l0.v1.Trajectory.decode(l0.v1.Trajectory.encode(t).finish());
    expect(back.policyVersion).to.equal(2 ** 40);
    expect(back.turns[0]!.promptTokenIds).to.deep.equal([1, 2, 300000]);
    expect(back.turns[0]!.responseLogprobs).to.deep.equal([-0.5, -1.25]);
    expect(back.turns[0]!.outcome).to.equal(l0.v1.ExecOutcome.EXEC_OUTCOME_TIMEOUT);
    expect(back.end).to.equal(l0.v1.EpisodeEnd.EPISODE_END_SANDBOX_FAILURE);
  });

  it("rejects truncated bytes instead of decoding garbage", () => {
    const bytes = l0.v1.Trajectory.encode({ trajectoryId: "x".repeat(100) }).finish();
    expect(() => l0.v1.Trajectory.decode(bytes.subarray(0, 50))).to.throw();
  });

  describe("over real gRPC", () => {
    let server: StartedServer;
    let client: InstanceType<typeof RolloutClient>;
    const token = "run-token-1";

    before(async () => {
      const notImplemented = () => {
        throw new L0Error("FailedPrecondition", "not implemented in this test");
      };
      const handlers: RolloutHandlers = {
        stats: unary({ token }, "Stats", (): l0.v1.IStatsResponse => ({
          queued: 3,
          leased: 2,
          backlog: 5,
          phase: l0.v1.HubPhase.HUB_PHASE_ROLLOUT,
        })),
        lease: unary({ token }, "Lease", (req: l0.v1.LeaseRequest) => {
          if (req.maxTasks < 1) throw invalidField("max_tasks", "must be at least 1");
          return { tasks: [] };
        }),
        heartbeat: unary({ token }, "Heartbeat", notImplemented),
        release: unary({ token }, "Release", notImplemented),
        submit: unary({ token }, "Submit", () => {
          throw new Error("boom: secret internal detail");
        }),
      };
      server = await startServer((s) => s.addService(RolloutService, handlers), {
        host: "127.0.0.1",
        port: 0,
      });
      client = new RolloutClient(server.address, grpc.credentials.createInsecure(), channelOptions());
    });
    after(async () => {
      client.close();
      await server.stop();
    });

    it("answers a call that carries the run token", async () => {
      const res = await call(client.stats, client, {}, { token, timeoutMs: 2000 });
      expect(res.backlog).to.equal(5);
      expect(res.phase).to.equal(l0.v1.HubPhase.HUB_PHASE_ROLLOUT);
    });

    it("refuses a wrong token with UNAUTHENTICATED", async () => {
      const err = await call(client.stats, client, {}, { token: "wrong", timeoutMs: 2000 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(L0Error);
      expect((err as L0Error).kind).to.equal("Unauthenticated");
    });

    it("maps a field error to INVALID_ARGUMENT with the field in the structured detail", async () => {
      const err = (await call(client.lease, client, { maxTasks: 0 }, { token, timeoutMs: 2000 }).catch(
        (e) => e,
      )) as L0Error;
      expect(err.kind).to.equal("InvalidArgument");
      expect(err.message).to.contain("max_tasks");
      expect(err.violations).to.deep.equal([{ field: "max_tasks", description: "must be at least 1" }]);
    });

    it("hides unexpected errors behind INTERNAL", async () => {
      const err = (await call(client.submit, client, {}, { token, timeoutMs: 2000 }).catch(
        (e) => e,
      )) as L0Error;
      expect(err.kind).to.equal("Internal");
      expect(err.message).not.to.contain("secret");
    });
  });
});
