// The worker keeps memory headroom: when the container's working set comes within the headroom
// of its limit, the kernel using the most memory is killed with that reason, before the OOM
// killer has to choose (it would prefer kernels, at oom_score_adj 1000, but in a Burstable pod the
// worker's own score can come out higher). Memory the per-process limits do not see (tmpfs files,
// kernel memory) counts too. The reading and the choice are pure; /proc and cgroup files are the
// thin edge, and the clock is a timer the caller can leave out (tests call check()).
import { readFileSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { type Logger } from "../../../lib/log.js";
import { parseProcCgroup } from "./cgroup.js";

export interface MemoryReading {
  /** Working set: usage minus inactive page cache (what the kubelet and the OOM killer weigh). */
  usedBytes: number;
  limitBytes: number;
}

const num = (text: string | null | undefined): number | null => {
  const n = Number((text ?? "").trim());
  return Number.isFinite(n) && (text ?? "").trim() !== "" ? n : null;
};
const statValue = (stat: string, key: string): number =>
  Number(new RegExp(`^${key} (\\d+)$`, "m").exec(stat)?.[1] ?? 0);

/**
 * Pure: the container's memory from its cgroup files (v2: memory.current/max/stat; v1:
 * memory.usage_in_bytes/limit_in_bytes/stat). Null without a limit ("max", or v1's page-counter
 * maximum): there is no edge to keep headroom from.
 */
export function parseMemory(
  version: "v1" | "v2",
  files: { usage: string | null; limit: string | null; stat: string | null },
): MemoryReading | null {
  const usage = num(files.usage);
  const limit = num(files.limit);
  if (usage === null || limit === null || limit >= 2 ** 60) return null;
  const inactive = statValue(files.stat ?? "", version === "v2" ? "inactive_file" : "total_inactive_file");
  return { usedBytes: Math.max(0, usage - inactive), limitBytes: limit };
}

const readOr = (p: string): string | null => {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return null;
  }
};

/** This process's container memory, read from its own cgroup (v2 or v1), or null. */
export function readContainerMemory(root = "/sys/fs/cgroup"): MemoryReading | null {
  const own = parseProcCgroup(readOr("/proc/self/cgroup") ?? "");
  if (readOr(join(root, "cgroup.controllers")) !== null) {
    const dir = join(root, own.get("") ?? "/");
    return parseMemory("v2", {
      usage: readOr(join(dir, "memory.current")),
      limit: readOr(join(dir, "memory.max")),
      stat: readOr(join(dir, "memory.stat")),
    });
  }
  const dir = join(root, "memory", own.get("memory") ?? "/");
  return parseMemory("v1", {
    usage: readOr(join(dir, "memory.usage_in_bytes")),
    limit: readOr(join(dir, "memory.limit_in_bytes")),
    stat: readOr(join(dir, "memory.stat")),
  });
}

/** Pure: the name of the kernel to kill when the reading is inside the headroom, else null. */
export function pickVictim(
  reading: MemoryReading | null,
  headroomBytes: number,
  footprints: readonly { name: string; bytes: number }[],
): string | null {
  if (!reading || reading.limitBytes - reading.usedBytes > headroomBytes) return null;
  let best: { name: string; bytes: number } | null = null;
  for (const f of footprints) if (!best || f.bytes > best.bytes) best = f;
  return best?.name ?? null;
}

/** Resident memory of the processes plus what their sandbox holds in tmpfs mounts. */
export function footprintBytes(pids: readonly number[], tmpfsRoot: number | null): number {
  let bytes = 0;
  for (const pid of pids) {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readOr(`/proc/${pid}/status`) ?? "");
    if (m) bytes += Number(m[1]) * 1024;
  }
  if (tmpfsRoot !== null)
    for (const dir of ["tmp", "dev/shm", "run/l0"]) {
      try {
        const s = statfsSync(`/proc/${tmpfsRoot}/root/${dir}`);
        bytes += (s.blocks - s.bfree) * s.bsize;
      } catch {
        // Not ours to read, or gone.
      }
    }
  return bytes;
}

export interface Evictable {
  name: string;
  alive: boolean;
  footprintBytes(): number;
  evict(reason: string): void;
}

export interface MemoryGuardOptions {
  kernels: () => Iterable<Evictable>;
  headroomBytes: number;
  logger: Logger;
  read?: () => MemoryReading | null;
  /** Check period; 0 leaves the timer out (tests call check()). */
  intervalMs: number;
}

export class MemoryGuard {
  #timer: NodeJS.Timeout | null = null;
  constructor(private readonly opts: MemoryGuardOptions) {}

  start(): void {
    if (this.opts.intervalMs <= 0 || this.#timer) return;
    this.#timer = setInterval(() => this.check(), this.opts.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Kills the biggest kernel when the headroom is gone; returns its name, or null. */
  check(): string | null {
    const reading = (this.opts.read ?? readContainerMemory)();
    if (!reading || reading.limitBytes - reading.usedBytes > this.opts.headroomBytes) return null;
    const live = [...this.opts.kernels()].filter((k) => k.alive);
    const prints = live.map((k) => ({ name: k.name, bytes: k.footprintBytes() }));
    const victim = pickVictim(reading, this.opts.headroomBytes, prints);
    const k = live.find((x) => x.name === victim);
    if (!k) return null;
    const mib = (b: number): number => Math.round(b / 2 ** 20);
    const bytes = prints.find((p) => p.name === victim)!.bytes;
    this.opts.logger.warn("memory headroom gone, killing the biggest kernel", {
      usedMiB: mib(reading.usedBytes),
      limitMiB: mib(reading.limitBytes),
      kernel: k.name,
      kernelMiB: mib(bytes),
    });
    k.evict(
      `the worker ran low on memory (${mib(reading.usedBytes)} of ${mib(reading.limitBytes)} MiB) ` +
        `and killed the kernel using the most (${mib(bytes)} MiB)`,
    );
    return k.name;
  }
}
