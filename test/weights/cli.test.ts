// The two programs as they run in pods: `l0 weights` and `l0 sidecar` as real processes, the
// token from a file, talking over loopback; the engine stand-in sees exactly one reload, and the
// sidecar's /metrics and /readyz show the served version. With the run's TLS directory (the
// mounted run Secret) both speak mutual TLS, and a plaintext client is refused.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, readlink, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { tokenMetadata } from "../../lib/grpc.js";
import { weightsClient } from "../../images/inference/puller.js";
import { issueRunTls } from "../../operator/run-tls.js";
import { engineStandIn, tempDir, until, writeVersion } from "./fixtures.js";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function l0(args: string[], env: Record<string, string>): ChildProcess {
  const p = spawn(process.execPath, ["bin/l0.js", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  p.stderr!.on("data", () => {}); // logs; kept out of the test output
  return p;
}

/** A process's /metrics text, or undefined while it does not answer. */
const metrics = async (p: number) => (await fetch(`http://127.0.0.1:${p}/metrics`).catch(() => null))?.text();

const stop = (p: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (p.exitCode !== null) return resolve();
    p.once("exit", () => resolve());
    p.kill("SIGTERM");
  });

describe("weights: l0 weights + l0 sidecar processes", function () {
  this.timeout(60_000);
  const procs: ChildProcess[] = [];
  const dirs: string[] = [];
  let engine: Awaited<ReturnType<typeof engineStandIn>> | undefined;
  after(async () => {
    for (const p of procs) await stop(p);
    await engine?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("serve, pull, verify, swap and reload once; the token comes from a file; bad flags name the field", async () => {
    const base = await tempDir("l0-weights-cli-");
    dirs.push(base);
    const exportDir = join(base, "export");
    const root = join(base, "shared");
    const tokenFile = join(base, "token");
    await writeFile(tokenFile, "cli-token\n");
    await writeVersion(exportDir, 1);
    engine = await engineStandIn();
    const [port, metricsPort, sidecarMetrics] = [await freePort(), await freePort(), await freePort()];
    const common = { L0_WEIGHTS_LOG_FORMAT: "json", L0_SIDECAR_LOG_FORMAT: "json" };

    const bad = l0(["weights", "--dir", exportDir, "--token-file", tokenFile, "--fanout", "-1"], common);
    let badErr = "";
    bad.stderr!.on("data", (d) => (badErr += String(d)));
    const code = await new Promise<number | null>((r) => bad.once("exit", r));
    expect(code).to.equal(2);
    expect(badErr).to.match(/--fanout \(L0_WEIGHTS_FANOUT\): must be at least 0/);

    procs.push(
      l0(["weights"], {
        ...common,
        L0_WEIGHTS_DIR: exportDir,
        L0_WEIGHTS_TOKEN_FILE: tokenFile,
        L0_WEIGHTS_HOST: "127.0.0.1",
        L0_WEIGHTS_PORT: String(port),
        L0_WEIGHTS_BULK_PORT: "0",
        L0_WEIGHTS_METRICS_PORT: String(metricsPort),
        L0_WEIGHTS_POLL_INTERVAL: "100ms",
      }),
    );
    procs.push(
      l0(
        [
          "sidecar",
          "--weights-address",
          `127.0.0.1:${port}`,
          "--token-file",
          tokenFile,
          "--root",
          root,
          "--engine",
          "sglang",
          "--engine-url",
          engine.url,
          "--engine-id",
          "engine-0",
          "--host",
          "127.0.0.1",
          "--peer-port",
          "0",
          "--peer-bulk-port",
          "0",
          "--metrics-port",
          String(sidecarMetrics),
          "--report-interval",
          "200ms",
        ],
        common,
      ),
    );
    await until(
      async () =>
        /l0_weights_version\{role="served",component="sidecar"\} 1/.test(
          (await metrics(sidecarMetrics)) ?? "",
        ),
      "sidecar serving v1",
      30_000,
    );
    expect((await fetch(`http://127.0.0.1:${sidecarMetrics}/readyz`)).status).to.equal(200);
    await writeVersion(exportDir, 2);
    await until(
      async () => /role="served",component="sidecar"\} 2/.test((await metrics(sidecarMetrics)) ?? ""),
      "sidecar serving v2",
      30_000,
    );
    expect(engine.calls.map((c) => c.body.model_path)).to.deep.equal([
      join(root, "versions", "1"),
      join(root, "versions", "2"),
    ]);
    expect(await readlink(join(root, "current"))).to.equal(join(root, "versions", "2"));
    const service = (await metrics(metricsPort)) ?? "";
    expect(service).to.match(/l0_weights_version\{role="exported",component="weights"\} 2/);
    expect(service).to.match(/l0_weights_bytes_total\{direction="sent",component="weights"\} [1-9]/);
  });

  it("with --tls-dir: the sidecar of the run syncs over mutual TLS, a plaintext client is refused", async () => {
    const base = await tempDir("l0-weights-cli-tls-");
    dirs.push(base);
    const exportDir = join(base, "export");
    const tlsDir = join(base, "tls");
    await mkdir(tlsDir);
    for (const [name, pem] of Object.entries(
      await issueRunTls({ run: "ns/r", dnsNames: [], now: new Date() }),
    ))
      await writeFile(join(tlsDir, name), Buffer.from(pem, "base64")); // Secret data: base64
    const tokenFile = join(base, "token");
    await writeFile(tokenFile, "cli-token\n");
    await writeVersion(exportDir, 1);
    const tlsEngine = await engineStandIn();
    const [port, metricsPort, sidecarMetrics] = [await freePort(), await freePort(), await freePort()];
    const weightsArgs = ["weights", "--dir", exportDir, "--token-file", tokenFile, "--host", "127.0.0.1"];
    procs.push(
      l0(
        [...weightsArgs, "--port", String(port), "--bulk-port", "0", "--metrics-port", String(metricsPort)],
        { L0_WEIGHTS_TLS_DIR: tlsDir },
      ),
    );
    procs.push(
      l0(
        [
          "sidecar",
          ...["--weights-address", `127.0.0.1:${port}`, "--token-file", tokenFile, "--tls-dir", tlsDir],
          ...["--root", join(base, "shared"), "--engine", "sglang", "--engine-url", tlsEngine.url],
          ...["--engine-id", "engine-0", "--host", "127.0.0.1", "--peer-port", "0", "--peer-bulk-port", "0"],
          ...["--metrics-port", String(sidecarMetrics), "--report-interval", "200ms"],
        ],
        {},
      ),
    );
    try {
      await until(
        async () => /role="served",component="sidecar"\} 1/.test((await metrics(sidecarMetrics)) ?? ""),
        "sidecar serving v1 over mutual TLS",
        30_000,
      );
      // No deadline: a fail-fast call ends as soon as the plaintext connection attempt fails.
      const plain = weightsClient(`127.0.0.1:${port}`);
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        plain.latest({}, tokenMetadata("cli-token"), {}, (e: grpc.ServiceError | null) => resolve(e)),
      );
      plain.close();
      expect(err?.code, "a plaintext client was answered").to.equal(grpc.status.UNAVAILABLE);
    } finally {
      await tlsEngine.close();
    }
  });
});
