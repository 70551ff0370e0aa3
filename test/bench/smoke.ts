// Template benchmark: encodes and decodes a realistic trajectory with the generated protobuf
// code and, side by side in the same run, with JSON, and reports the ratio. Copy its shape:
// measure the thing and its ceiling/baseline in one run, repeat, report medians.
import { l0 } from "../../lib/proto.js";
import { emit, median, round } from "./stats.js";

function trajectory(turns: number, tokens: number): l0.v1.ITrajectory {
  const ids = Array.from({ length: tokens }, (_, i) => (i * 7919) % 50_000);
  const logprobs = ids.map((i) => -((i % 97) / 13));
  return {
    trajectoryId: "lease-123",
    taskId: "task-1",
    turns: Array.from({ length: turns }, () => ({
      promptTokenIds: ids,
      responseTokenIds: ids.slice(0, tokens / 4),
      responseLogprobs: logprobs.slice(0, tokens / 4),
      code: "print(sum(range(10)))",
      observation: "45",
      outcome: l0.v1.ExecOutcome.EXEC_OUTCOME_OK,
    })),
  };
}

function timeOps(fn: () => void, ms: number): number {
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    fn();
    n++;
  }
  return n / (ms / 1000);
}

const t = trajectory(8, 512);
const proto = [];
const json = [];
for (let round_ = 0; round_ < 5; round_++) {
  proto.push(timeOps(() => l0.v1.Trajectory.decode(l0.v1.Trajectory.encode(t).finish()), 200));
  json.push(timeOps(() => JSON.parse(JSON.stringify(t)), 200));
}
const bytes = l0.v1.Trajectory.encode(t).finish().length;
const jsonBytes = Buffer.byteLength(JSON.stringify(t));
const figures = {
  bench: "smoke",
  proto_roundtrips_per_s: round(median(proto), 0),
  json_roundtrips_per_s: round(median(json), 0),
  proto_vs_json: round(median(proto) / median(json), 2),
  proto_bytes: bytes,
  json_bytes: jsonBytes,
};
console.log(`trajectory (8 turns x 512 tokens): protobuf ${bytes} B, JSON ${jsonBytes} B`);
console.log(
  `round trips/s (median of 5): protobuf ${figures.proto_roundtrips_per_s}, JSON ${figures.json_roundtrips_per_s}`,
);
emit(figures);
