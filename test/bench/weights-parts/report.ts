// The weight bench's summary: medians of the repeated rounds, printed and as the closing JSON line;
// the bulk/plain-TCP ratio is the median of each round's ratio of its two adjacent pulls.
import { availableParallelism, loadavg } from "node:os";
import { emit, median, round } from "../stats.js";
import { type StageCosts } from "./stages.js";

export interface Measured {
  bytesPerSecond: number;
  /** CPU seconds of both ends (sender here, receiver in the child) per GB moved. */
  cpuPerGB: number;
  /** 1-minute load average when it started (the machine is shared). */
  load: number;
}

export const load = (): number => round(loadavg()[0]!, 2);

export interface Summary {
  bytes: number;
  shards: number;
  chunkBytes: number;
  maxRss: number;
}

export function report(
  b: Summary,
  r: {
    stages: StageCosts;
    tcp: Measured[];
    transport: Measured[];
    /** The product path (a sidecar's `--transport auto`: the bulk channel). */
    pulls: Measured[];
    /** The same verified pull over gRPC Pull (`--transport grpc`). */
    grpcPulls: Measured[];
    vtcp: Measured[];
    scaling: unknown[];
    diskPull: Measured;
    f1: { seconds: number };
    f4: { seconds: number; egress: number };
    f4star: { seconds: number; egress: number };
    streams: number;
    threads: number;
    fanout: number;
    repeat: number;
    notes: string[];
  },
): void {
  const med = (ms: Measured[], f: (m: Measured) => number) => median(ms.map(f));
  const gbps = med(r.pulls, (m) => m.bytesPerSecond) / 1e9;
  const grpcPullGbps = med(r.grpcPulls, (m) => m.bytesPerSecond) / 1e9;
  const grpcPullCpu = med(r.grpcPulls, (m) => m.cpuPerGB);
  const vtcpGbps = med(r.vtcp, (m) => m.bytesPerSecond) / 1e9;
  const tcpGbps = med(r.tcp, (m) => m.bytesPerSecond) / 1e9;
  const grpcGbps = med(r.transport, (m) => m.bytesPerSecond) / 1e9;
  const tcpCpu = med(r.tcp, (m) => m.cpuPerGB);
  const pullCpu = med(r.pulls, (m) => m.cpuPerGB);
  const vtcpCpu = med(r.vtcp, (m) => m.cpuPerGB);
  const loads = [...r.pulls, ...r.grpcPulls, ...r.vtcp].map((m) => m.load);
  // Each round's bulk pull over the plain-TCP pull run right beside it (weights.ts).
  const paired = r.pulls.map((p, i) => p.bytesPerSecond / r.vtcp[i]!.bytesPerSecond);
  const ratio = median(paired);
  console.log(
    `median of ${r.repeat}: verified pull over the bulk channel ${round(gbps, 3)} GB/s (${round(pullCpu, 2)} CPU-s/GB), ` +
      `over gRPC Pull ${round(grpcPullGbps, 3)} GB/s (${round(grpcPullCpu, 2)} CPU-s/GB), over plain TCP ${round(vtcpGbps, 3)} GB/s (${round(vtcpCpu, 2)} CPU-s/GB): ` +
      `ratio ${round(ratio, 3)} (median of the rounds' ${paired.map((x) => round(x, 2)).join(", ")}; of the medians ${round(gbps / vtcpGbps, 3)}); raw TCP ${round(tcpGbps, 3)} GB/s (${round(tcpCpu, 2)} CPU-s/GB); gRPC Pull alone ${round(grpcGbps, 3)} GB/s; ` +
      `load average ${round(Math.min(...loads), 1)}..${round(Math.max(...loads), 1)} during them on ${availableParallelism()} CPUs`,
  );
  console.log(`peak RSS of a pulling process: ${round(b.maxRss, 0)} MiB (it never holds a whole shard)`);
  for (const n of r.notes) console.log(`note: ${n}`);
  emit({
    bench: "weights",
    bytes: b.bytes,
    shards: b.shards,
    chunk_bytes: b.chunkBytes,
    cpus: availableParallelism(),
    streams: r.streams,
    hash_threads: r.threads,
    transport: "bulk",
    gbps: round(gbps, 3),
    verified_tcp_gbps: round(vtcpGbps, 3),
    verified_tcp_ratio: round(ratio, 3),
    verified_tcp_ratio_rounds: paired.map((x) => round(x, 3)),
    verified_tcp_ratio_of_medians: round(gbps / vtcpGbps, 3),
    pull_cpu_s_per_gb: round(pullCpu, 3),
    grpc_pull_gbps: round(grpcPullGbps, 3),
    grpc_pull_cpu_s_per_gb: round(grpcPullCpu, 3),
    grpc_pull_ratio: round(grpcPullGbps / vtcpGbps, 3),
    verified_tcp_cpu_s_per_gb: round(vtcpCpu, 3),
    tcp_gbps: round(tcpGbps, 3),
    tcp_cpu_s_per_gb: round(tcpCpu, 3),
    grpc_gbps: round(grpcGbps, 3),
    grpc_cpu_s_per_gb: round(
      med(r.transport, (m) => m.cpuPerGB),
      3,
    ),
    scaling: r.scaling,
    stage_cpu_s_per_gb: Object.fromEntries(Object.entries(r.stages).map(([k, v]) => [k, round(v, 3)])),
    disk_pull_gbps: round(r.diskPull.bytesPerSecond / 1e9, 3),
    pull_max_rss_mib: round(b.maxRss, 0),
    seconds_1: round(r.f1.seconds, 3),
    seconds_4: round(r.f4.seconds, 3),
    fanout: r.fanout,
    trainer_egress_ratio_4: round(r.f4.egress, 3),
    seconds_4_no_fanout: round(r.f4star.seconds, 3),
    trainer_egress_ratio_4_no_fanout: round(r.f4star.egress, 3),
    loadavg_1m: { min: Math.min(...loads), max: Math.max(...loads), end: load() },
    ...(r.notes.length ? { note: r.notes.join("; ") } : {}),
  });
}
