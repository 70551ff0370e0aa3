// `l0 operator` as a process: kubeconfig from a file, probes and the metric names on
// /metrics, a run reconciled, a clean exit on SIGTERM, and exit 2 naming the flag on bad config.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { startKubeServer } from "../kube/server.js";
import { TR, eventually, run } from "./harness.js";
import * as k8s from "@kubernetes/client-node";

describe("operator: l0 operator command", function () {
  this.timeout(30_000);

  it("serves probes and metrics, reconciles, holds the lease and exits cleanly on SIGTERM", async () => {
    const kube = await startKubeServer({ crdDir: "crds", sim: false, namespaces: ["l0-system"] });
    const dir = mkdtempSync(join(tmpdir(), "l0-op-"));
    writeFileSync(join(dir, "kubeconfig"), kube.kubeConfigYaml("default"));
    const child = spawn(
      process.execPath,
      [
        "bin/l0.js",
        "operator",
        "--kubeconfig",
        join(dir, "kubeconfig"),
        "--metrics-port",
        "0",
        "--log-format",
        "json",
        "--retry-period",
        "200ms",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    const lines: Record<string, unknown>[] = [];
    child.stderr.setEncoding("utf8");
    let buf = "";
    child.stderr.on("data", (d: string) => {
      buf += d;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      for (const l of parts)
        try {
          lines.push(JSON.parse(l));
        } catch {
          /* ajv warnings */
        }
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      const running = await eventually(
        () => lines.find((l) => l.message === "running"),
        "running log line",
        15_000,
      );
      const url = running.metrics as string;
      expect(await (await fetch(url + "/healthz")).text()).to.equal("ok\n");
      await eventually(async () => (await fetch(url + "/readyz")).status === 200, "ready");
      const custom = kube.kubeConfig("default").makeApiClient(k8s.CustomObjectsApi);
      await custom.createNamespacedCustomObject({ ...TR, body: run("cli") });
      await eventually(
        () => kube.get("l0.dev/v1alpha1", "TrainingRun", "default", "cli")?.status?.phase === "Initializing",
        "reconciled",
        10_000,
      );
      const lease = kube.get("coordination.k8s.io/v1", "Lease", "l0-system", "l0-operator");
      expect(lease?.spec.holderIdentity).to.be.a("string").and.not.equal("");
      const names = [
        "l0_reconcile_total",
        "l0_reconcile_duration_seconds_bucket",
        "l0_workqueue_depth",
        "l0_workqueue_retries_total",
        "l0_operator_leader 1",
      ];
      await eventually(
        async () => {
          const metrics = await (await fetch(url + "/metrics")).text();
          return names.every((n) => metrics.includes(n));
        },
        `metrics ${names.join(", ")}`,
      );
      const reconciled = lines.find((l) => l.message === "child created");
      expect(reconciled).to.include.keys("reconcileId", "controller", "namespace", "name");
      child.kill("SIGTERM");
      expect(await exited).to.equal(0);
      // A clean stop releases the lease for a fast handover.
      expect(
        kube.get("coordination.k8s.io/v1", "Lease", "l0-system", "l0-operator")?.spec.holderIdentity,
      ).to.equal("");
    } finally {
      child.kill("SIGKILL");
      await kube.stop();
    }
  });

  it("exits 2 naming the flag when the configuration is bad", () => {
    const r = spawnSync(process.execPath, ["bin/l0.js", "operator", "--concurrency", "0"], {
      encoding: "utf8",
    });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--concurrency/);
  });

  it("without any cluster, exits 2 at start with one line saying so (no stack trace)", () => {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: mkdtempSync(join(tmpdir(), "l0-home-")) };
    delete env.KUBECONFIG;
    delete env.KUBERNETES_SERVICE_HOST;
    delete env.L0_OPERATOR_KUBECONFIG;
    const r = spawnSync(process.execPath, ["bin/l0.js", "operator", "--metrics-port", "0"], {
      encoding: "utf8",
      env,
      timeout: 30_000,
    });
    expect(r.status).to.equal(2);
    const last = r.stderr.trim().split("\n").at(-1)!;
    expect(last).to.match(/^l0 operator: invalid configuration: no Kubernetes cluster to connect to/);
    expect(r.stderr).not.to.match(/\n\s+at /);
  });
});
