// Builders shared by the hub tests: settings from a TrainingRun-like object, datasets from
// lines, trajectories, and a hub served over real gRPC on port 0 with a real client.
import { call, channelOptions, startServer, type StartedServer } from "../../lib/grpc.js";
import { createRegistry } from "../../lib/metrics.js";
import { l0, RolloutClient } from "../../lib/proto.js";
import { clientCredentials, type RunTls } from "../../lib/tls.js";
import { resolvedRun } from "../fixtures/runs.js";
import { type Dataset, parseJsonl } from "../../images/trainer/hub/dataset.js";
import { Hub, type HubOptions } from "../../images/trainer/hub/hub.js";
import { RolloutServer } from "../../images/trainer/hub/service.js";
import { type HubSettings, hubSettings } from "../../images/trainer/hub/settings.js";
import { type Registry } from "prom-client";

export const TOKEN = "test-run-token";

export function settings(
  spec: { algorithm?: object; reward?: object; agent?: object; dataset?: object } = {},
): HubSettings {
  return hubSettings(
    resolvedRun(
      { ...spec, dataset: { path: "train.jsonl", ...spec.dataset }, workerPoolRef: { name: "pool" } },
      "qa",
      "ns",
    ),
  );
}

export function dataset(n: number): Dataset {
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({ question: `q${i}?`, answer: [`ans${i}`, `alt ${i}`] }),
  );
  return parseJsonl(lines.join("\n"), { questionField: "question", answerField: "answer" }, "mem");
}

export const END = l0.v1.EpisodeEnd;

/** A trajectory for a leased task; `answer` null = no final answer. */
export function traj(
  task: l0.v1.ITask,
  opts: {
    answer?: string | null;
    end?: l0.v1.EpisodeEnd;
    turns?: number;
    id?: string;
    version?: number;
  } = {},
): l0.v1.ITrajectory {
  const turns = opts.turns ?? 2;
  const answer = opts.answer === undefined ? "wrong" : opts.answer;
  return {
    trajectoryId: opts.id ?? `t-${task.leaseId}`,
    taskId: task.taskId,
    leaseId: task.leaseId,
    workerId: "w",
    policyVersion: opts.version ?? Number(task.policyVersion ?? 0),
    turns: Array.from({ length: turns }, (_, i) => ({
      promptTokenIds: [1, 2, 3 + i],
      responseTokenIds: [10 + i, 11 + i],
      responseLogprobs: [-0.5, -0.25],
      formatOk: true,
      outcome: l0.v1.ExecOutcome.EXEC_OUTCOME_OK,
      llmSeconds: 0.5,
    })),
    hasFinalAnswer: answer !== null,
    finalAnswer: answer ?? "",
    end: opts.end ?? END.EPISODE_END_ANSWERED,
    durationSeconds: 1,
  };
}

/** The right answer of a task created by dataset(): its question is "q<i>?". */
export function rightAnswer(task: l0.v1.ITask): string {
  return `ans${/^q(\d+)\?$/.exec(task.prompt ?? "")![1]}`;
}

export interface Served {
  hub: Hub;
  registry: Registry;
  server: StartedServer;
  client: InstanceType<typeof RolloutClient>;
  rpc: {
    lease(workerId: string, max?: number, waitMs?: number): Promise<l0.v1.LeaseResponse>;
    heartbeat(workerId: string, leaseIds: string[]): Promise<l0.v1.HeartbeatResponse>;
    release(workerId: string, leaseIds: string[]): Promise<l0.v1.ReleaseResponse>;
    submit(t: l0.v1.ITrajectory): Promise<l0.v1.SubmitResponse>;
    stats(): Promise<l0.v1.StatsResponse>;
  };
  close(): Promise<void>;
}

export async function serve(
  opts: Partial<HubOptions> & { settings: HubSettings; tls?: RunTls },
): Promise<Served> {
  const registry = opts.registry ?? createRegistry({ defaultMetrics: false });
  const hub = new Hub({ train: dataset(50), registry, ...opts });
  hub.start();
  const server = await startServer((s) => new RolloutServer(hub, { token: TOKEN }).addToServer(s), {
    host: "127.0.0.1",
    port: 0,
    maxMessageBytes: 4 * 1024 * 1024,
    tls: opts.tls,
  });
  const { credentials, options } = clientCredentials(opts.tls);
  const client = new RolloutClient(server.address, credentials, { ...channelOptions(), ...options });
  const o = { token: TOKEN, timeoutMs: 10_000 };
  return {
    hub,
    registry,
    server,
    client,
    rpc: {
      lease: (workerId, max = 1, waitMs = 0) =>
        call(client.lease, client, { workerId, maxTasks: max, waitMs }, o),
      heartbeat: (workerId, ids) =>
        call(client.heartbeat, client, { workerId, leases: ids.map((leaseId) => ({ leaseId })) }, o),
      release: (workerId, ids) =>
        call(client.release, client, { workerId, leaseIds: ids, reason: "drain" }, o),
      submit: (trajectory) => call(client.submit, client, { trajectory }, o),
      stats: () => call(client.stats, client, {}, o),
    },
    close: async () => {
      client.close();
      hub.stop();
      await server.stop(100);
    },
  };
}

/** A settable clock for lease deadlines and backoff, starting at a fixed unix time. */
export function manualClock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}
