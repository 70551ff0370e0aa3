// The built images, run (scripts/build-images.sh builds them; scripts/smoke-images.sh runs this
// file with L0_IMAGE_SMOKE=1; skipped otherwise): each starts as uid 65532 and answers --help;
// the operator without a cluster and the worker without a writable cgroup end in one line; and
// the worker image runs a real sandboxed episode under exactly the security settings the operator
// gives worker pods, translated field by field into podman flags (an unknown field fails the test).
import { expect } from "chai";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1PodSpec } from "@kubernetes/client-node";
import { l0 } from "../../lib/proto.js";
import { buildWorkerDeployment } from "../../operator/workerpool/build.js";
import { CONFIG_DIR, TOKEN_DIR } from "../../operator/run-files.js";
import { issueRunTls } from "../../operator/run-tls.js";
import { tlsFromSecretData } from "../../lib/tls.js";
import { resolvedPool, resolvedRun } from "../fixtures/runs.js";
import { startScriptedEngine, turn, type ScriptedEngine } from "../worker/fixtures/engine.js";
import { startTestHub, task, type TestHub } from "../worker/fixtures/hub.js";
import { podmanArgs } from "./podman.js";

const VERSION = process.env.VERSION ?? "0.1.0";
const PREFIX = process.env.L0_IMAGE_PREFIX ?? "l0/";
const IMAGES = {
  operator: `${PREFIX}operator:${VERSION}`,
  worker: `${PREFIX}worker:${VERSION}`,
  inference: `${PREFIX}inference-sidecar:${VERSION}`,
};
/** The same storage scripts/build-images.sh builds into (L0_STORAGE_DRIVER, L0_CONTAINERS_ROOT). */
const ROOT = process.env.L0_CONTAINERS_ROOT;
const PODMAN = [
  "--storage-driver",
  process.env.L0_STORAGE_DRIVER ?? "overlay",
  ...(ROOT ? ["--root", ROOT, "--runroot", `${ROOT}.run`] : []),
  "--cgroup-manager",
  "cgroupfs",
  "--runtime",
  "runc",
];
/** Limits at or below this host's (podman's defaults exceed them), no systemd healthcheck timers. */
const RUN = [
  "run",
  "--rm",
  "--ulimit",
  "nofile=20000:20000",
  "--ulimit",
  "nproc=32768:32768",
  "--no-healthcheck",
];

function podman(args: string[], timeout = 120_000) {
  return spawnSync("podman", [...PODMAN, ...args], { encoding: "utf8", timeout });
}

/** A one-line reason on stderr, no stack trace. */
function expectOneLine(stderr: string, re: RegExp): void {
  const lines = stderr.trim().split("\n");
  expect(lines.at(-1)).to.match(re);
  expect(stderr).not.to.match(/\n\s+at /);
}

const smoke = process.env.L0_IMAGE_SMOKE === "1" ? describe : describe.skip;

smoke("images: the built images run", function () {
  this.timeout(180_000);

  for (const [name, ref] of Object.entries(IMAGES))
    it(`${name}: runs as 65532 (non-root) and answers --help`, () => {
      const user = podman(["image", "inspect", "--format", "{{.Config.User}}", ref]);
      expect(user.stdout.trim(), user.stderr).to.equal("65532:65532");
      const id = podman([...RUN, "--entrypoint", "id", ref, "-u"]);
      expect(id.stdout.trim(), id.stderr).to.equal("65532");
      const help = podman([...RUN, ref, "--help"]);
      expect(help.status, help.stderr).to.equal(0);
      expect(help.stdout).to.match(/Usage: l0/);
    });

  it("operator: without a cluster, exit 2 with one line", () => {
    const r = podman([...RUN, IMAGES.operator, "operator"]);
    expect(r.status).to.equal(2);
    expectOneLine(r.stderr, /^l0 operator: invalid configuration: no Kubernetes cluster/);
  });

  it("worker: strict mode where no cgroup is writable ends with one line naming the way out", () => {
    const r = podman([
      ...RUN,
      IMAGES.worker,
      "worker",
      "--hub",
      "127.0.0.1:1",
      "--engine-url",
      "http://127.0.0.1:1",
      "--token-file",
      "/etc/hostname",
      "--sandbox-mode",
      "strict",
    ]);
    expect(r.status).to.equal(2); // configuration: not retried (README, "Exit codes")
    expectOneLine(
      r.stderr,
      /^l0 worker: invalid configuration: --sandbox-mode strict: sandbox: no writable pids cgroup.*--sandbox-mode weak/,
    );
  });

  describe("worker: one real sandboxed episode under the operator's pod security settings", () => {
    let hub: TestHub;
    let tlsData: Record<string, string>;
    let engine: ScriptedEngine;
    let child: ChildProcess | undefined;
    const stderr: string[] = [];

    before(async () => {
      tlsData = await issueRunTls({ run: "default/smoke", dnsNames: [], now: new Date() });
      hub = await startTestHub({ tls: tlsFromSecretData(tlsData) }); // the run's mutual TLS, as the operator sets it up
      engine = await startScriptedEngine(
        (_p, n) =>
          [turn("compute", "x = 6 * 7\nprint('x is', x)"), turn("submit", "submit_final_answer(x)")][n]!,
      );
    });
    after(async () => {
      child?.kill("SIGKILL");
      podman(["rm", "-f", "l0-smoke-worker"]);
      await engine.close();
      await hub.stop();
    });

    it("leases, runs both cells in bwrap inside the container, and submits the answer", async () => {
      const pod: V1PodSpec = buildWorkerDeployment(resolvedPool(), resolvedRun(), 1).spec!.template.spec!;
      // The pod's uids are not the host's (hostUsers: false): the files must be world-readable.
      const dir = mkdtempSync(join(tmpdir(), "l0-smoke-"));
      for (const d of ["token", "config"]) mkdirSync(join(dir, d), { mode: 0o755 });
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, "token", "token"), hub.token, { mode: 0o444 });
      // The rest of the run Secret: the TLS material the pod's L0_WORKER_TLS_DIR names.
      for (const [k, v] of Object.entries(tlsData))
        writeFileSync(join(dir, "token", k), Buffer.from(v, "base64"), { mode: 0o444 });
      const args = podmanArgs(pod, {
        name: "l0-smoke-worker",
        mounts: { [TOKEN_DIR]: join(dir, "token"), [CONFIG_DIR]: join(dir, "config") },
        env: { L0_WORKER_HUB: hub.address, L0_WORKER_ENGINE_URL: engine.url, L0_WORKER_RUN_CONFIG: null },
      });
      hub.add([task("t1", "what is six times seven?", { tools: [] })]);
      child = spawn("podman", [...PODMAN, ...RUN, "--network", "host", ...args, IMAGES.worker, "worker"]);
      child.stderr!.on("data", (d: Buffer) => stderr.push(d.toString()));
      const deadline = Date.now() + 120_000;
      while (!hub.submitted.size && child.exitCode === null && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 200));
      const t = [...hub.submitted.values()][0];
      expect(t, stderr.join("").slice(-3000)).to.not.equal(undefined);
      expect(t!.end).to.equal(l0.v1.EpisodeEnd.EPISODE_END_ANSWERED);
      expect(t!.finalAnswer).to.equal("42");
      expect(t!.turns![0]!.observation).to.contain("x is 42");
    });
  });
});
