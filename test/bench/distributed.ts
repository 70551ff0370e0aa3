// `npm run bench -- distributed [RANKS]`: the same batch trained by 1 learner rank and by RANKS
// gloo CPU ranks (torch.distributed, one process each): the parameters must agree at float32
// round-off. The Python side is test/learner/py/dist_run.py; its JSON line is the last line here.
import { spawnSync } from "node:child_process";
import { DEFAULT_PYTHON } from "../../images/trainer/learner/client.js";

const ranks = process.argv[2] ?? "2";
const r = spawnSync(process.env.L0_PYTHON ?? DEFAULT_PYTHON, ["dist_run.py", ranks], {
  cwd: "test/learner/py",
  encoding: "utf8",
  env: {
    ...process.env,
    OPENBLAS_NUM_THREADS: "1",
    STEPS: process.env.STEPS ?? "5",
    ROWS: process.env.ROWS ?? "32",
  },
});
if (r.status !== 0) {
  process.stderr.write(r.stderr);
  process.exit(r.status ?? 1);
}
const line = r.stdout.trim().split("\n").at(-1)!;
const out = JSON.parse(line) as { max_abs_param_diff: number };
console.error(`max |param(1 rank) - param(${ranks} ranks)| = ${out.max_abs_param_diff}`);
console.log(JSON.stringify(out));
