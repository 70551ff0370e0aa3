// `npm run bench -- gpu`: the learner's GPU path on one CUDA device (gpu_run.py beside this file
// says what it measures); prints {"bench":"gpu","skipped":...} and exits 0 without CUDA.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { DEFAULT_PYTHON } from "../../../images/trainer/learner/client.js";

const r = spawnSync(process.env.L0_PYTHON ?? DEFAULT_PYTHON, [join(import.meta.dirname, "gpu_run.py")], {
  stdio: ["ignore", "pipe", "inherit"],
  encoding: "utf8",
  env: { ...process.env, OPENBLAS_NUM_THREADS: "1" },
});
process.stdout.write(r.stdout);
process.exit(r.status ?? 1);
