// The learner's ranks across the trainer pods (torch.distributed): one learner process per GPU
// (one per pod without GPUs), with torchrun's variables derived from what the operator sets on
// the indexed Job's pods (NODE_RANK, MASTER_ADDR, MASTER_PORT) and the run's spec.trainer. The
// global rank 0 (pod 0) serves the Learner gRPC service and leads; the other ranks follow it
// (images/trainer/learner/dist.py). A rank that exits fails its pod's trainer, and so the attempt.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { L0Error, invalidField } from "../../../lib/errors.js";
import { type Logger } from "../../../lib/log.js";
import {
  DEFAULT_PYTHON,
  type LearnerFlags,
  learnerArgs,
  learnerEnv,
  learnerPaths,
  logTo,
} from "../learner/client.js";

export interface NodeLayout {
  nodes: number;
  nodeRank: number;
  procsPerNode: number;
  masterAddr: string;
  masterPort: string;
}

/** Pure: the layout from the resolved spec.trainer and the pod's env; errors name the variable. */
export function nodeLayout(
  trainer: { nodes: number; gpusPerNode: number },
  device: "cpu" | "cuda",
  env: NodeJS.ProcessEnv,
): NodeLayout {
  const nodeRank = Number(env.NODE_RANK ?? "0");
  if (!Number.isInteger(nodeRank) || nodeRank < 0 || nodeRank >= trainer.nodes)
    throw invalidField(
      "NODE_RANK",
      `must be an integer in [0, ${trainer.nodes}) (spec.trainer.nodes), got ${env.NODE_RANK}`,
    );
  // One process per GPU; a CPU learner (gpusPerNode 0, or the CPU device forced) is one per pod.
  const procsPerNode = device === "cuda" ? Math.max(1, trainer.gpusPerNode) : 1;
  const layout = {
    nodes: trainer.nodes,
    nodeRank,
    procsPerNode,
    masterAddr: env.MASTER_ADDR ?? "",
    masterPort: env.MASTER_PORT ?? "",
  };
  if (trainer.nodes * procsPerNode > 1 && !(layout.masterAddr && layout.masterPort))
    throw invalidField(
      "MASTER_ADDR, MASTER_PORT",
      "are required with more than one learner rank (the operator sets them)",
    );
  return layout;
}

/** Pure: the extra env of each learner process of this pod, local rank order; `{}` for one rank in all. */
export function rankEnvs(l: NodeLayout): Record<string, string>[] {
  const world = l.nodes * l.procsPerNode;
  if (world === 1) return [{}];
  return Array.from({ length: l.procsPerNode }, (_, local) => ({
    RANK: String(l.nodeRank * l.procsPerNode + local),
    WORLD_SIZE: String(world),
    LOCAL_RANK: String(local),
    LOCAL_WORLD_SIZE: String(l.procsPerNode),
    MASTER_ADDR: l.masterAddr,
    MASTER_PORT: l.masterPort,
  }));
}

export interface Followers {
  /** Rejects when a follower exits before stopping(): the attempt is over. Never resolves. */
  failed: Promise<never>;
  /** Every follower's exit code (0 when rank 0 stopped the group). */
  exited: Promise<(number | null)[]>;
  /** From now on an exit is expected (rank 0 is stopping the group). */
  stopping(): void;
  /** SIGKILL to every follower still running. */
  kill(): void;
}

/** Starts the follower ranks (no gRPC, no engine): they join the group and wait for rank 0's calls. */
export function startFollowers(
  envs: Record<string, string>[],
  flags: LearnerFlags,
  logger: Logger,
  base: NodeJS.ProcessEnv = process.env,
): Followers {
  const paths = learnerPaths(base);
  const procs: ChildProcess[] = envs.map((extra) => {
    const child = spawn(base.L0_PYTHON ?? DEFAULT_PYTHON, ["-m", "learner", ...learnerArgs(flags)], {
      env: { ...learnerEnv(paths, base), ...extra },
      stdio: ["ignore", "inherit", "pipe"],
    });
    const onLog = logTo(logger.child({ component: "learner", rank: Number(extra.RANK) }));
    createInterface({ input: child.stderr! }).on("line", (text) => {
      try {
        const rec: unknown = JSON.parse(text);
        onLog(rec && typeof rec === "object" ? (rec as Record<string, unknown>) : text);
      } catch {
        onLog(text);
      }
    });
    return child;
  });
  let expected = false;
  const exits = procs.map(
    (p, i) =>
      new Promise<{ rank: string; code: number | null }>((resolve) =>
        p.once("exit", (code, signal) =>
          resolve({ rank: envs[i]!.RANK!, code: code ?? (signal ? 128 : null) }),
        ),
      ),
  );
  const failed = new Promise<never>((_, reject) => {
    for (const e of exits)
      void e.then(({ rank, code }) => {
        if (!expected)
          reject(
            new L0Error("Unavailable", `learner rank ${rank} exited with code ${code}; the attempt fails`),
          );
      });
  });
  failed.catch(() => undefined); // observed by whoever awaits it
  return {
    failed,
    exited: Promise.all(exits).then((r) => r.map((x) => x.code)),
    stopping: () => void (expected = true),
    kill: () => {
      expected = true;
      for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    },
  };
}

/** A pod other than 0: only follower ranks; done when they all are (an error if one failed). */
export async function followNode(
  envs: Record<string, string>[],
  flags: LearnerFlags,
  logger: Logger,
): Promise<void> {
  logger.info("learner ranks starting (this pod runs no hub)", { ranks: envs.map((e) => Number(e.RANK)) });
  const f = startFollowers(envs, flags, logger);
  const codes = await f.exited;
  const bad = codes.findIndex((c) => c !== 0);
  if (bad >= 0)
    throw new L0Error(
      "Unavailable",
      `learner rank ${envs[bad]!.RANK} exited with code ${codes[bad]}; the attempt fails`,
    );
  logger.info("learner ranks finished", { ranks: envs.length });
}

/** The learner's device as it resolves it (images/trainer/learner/config.py): flag env, else the run's GPUs. */
export function learnerDevice(gpusPerNode: number, env: NodeJS.ProcessEnv): "cpu" | "cuda" {
  const forced = env.L0_LEARNER_DEVICE;
  if (forced === "cpu" || forced === "cuda") return forced;
  return gpusPerNode > 0 ? "cuda" : "cpu";
}
