// `npm run bench -- distributed [RANKS]`: the same batch trained by 1 learner rank and by RANKS
// gloo CPU ranks (torch.distributed, one process each): the parameters must agree at float32
// round-off. The Python side is test/learner/py/dist_run.py (the replicated layout). With
// L0_FSDP_PYTHONPATH naming a PYTHONPATH whose torch has `fully_shard` (>= 2.8; Debian's 1.13 has
// not), the sharded layout runs too (fsdp_run.py: FSDP2 ranks against 1 unsharded rank, and their
// exports) and its numbers come under "fsdp2". The JSON line is the last line here.
import { spawnSync } from "node:child_process";
import { DEFAULT_PYTHON } from "../../images/trainer/learner/client.js";

const ranks = process.argv[2] ?? "2";

function run(script: string, pythonPath?: string): Record<string, unknown> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OPENBLAS_NUM_THREADS: "1",
    STEPS: process.env.STEPS ?? "5",
    ROWS: process.env.ROWS ?? "32",
  };
  if (pythonPath !== undefined) env.PYTHONPATH = pythonPath;
  const r = spawnSync(process.env.L0_PYTHON ?? DEFAULT_PYTHON, ["-W", "ignore", script, ranks], {
    cwd: "test/learner/py",
    encoding: "utf8",
    env,
  });
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    process.exit(r.status ?? 1);
  }
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

const out = run("dist_run.py");
console.error(`replicated: max |param(1 rank) - param(${ranks} ranks)| = ${String(out.max_abs_param_diff)}`);
const fsdpPath = process.env.L0_FSDP_PYTHONPATH;
if (fsdpPath) {
  const sharded = run("fsdp_run.py", fsdpPath);
  delete sharded.bench;
  console.error(
    `fsdp2: max |param(1 rank) - param(${ranks} sharded ranks)| = ${String(sharded.max_abs_param_diff)}`,
  );
  out.fsdp2 = sharded;
} else {
  console.error("fsdp2: skipped (set L0_FSDP_PYTHONPATH to a PYTHONPATH whose torch has fully_shard)");
}
console.log(JSON.stringify(out));
