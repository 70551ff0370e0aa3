// A run's data plane over mutual TLS (lib/tls.ts, operator/run-tls.ts), over real gRPC on
// loopback: only a client holding a certificate of the run's own CA gets an answer.
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { startServer, type StartedServer } from "../../lib/grpc.js";
import {
  clientCredentials,
  readTlsDir,
  type RunTls,
  TLS_SERVER_NAME,
  tlsFromSecretData,
} from "../../lib/tls.js";
import { type L0Error } from "../../lib/errors.js";
import { HubStats } from "../../operator/hub-stats.js";
import { issueRunTls, VALIDITY_DAYS } from "../../operator/run-tls.js";
import { HubClient } from "../../images/worker/hub.js";
import { serve, settings, TOKEN } from "../hub/helpers.js";

const raw = (b: Buffer): Buffer => b;
const PING: grpc.ServiceDefinition = {
  ping: {
    path: "/test.Ping/Ping",
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};
const PingClient = grpc.makeGenericClientConstructor(PING, "Ping");

function ping(address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}) {
  const client = new PingClient(address, credentials, options);
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      "/test.Ping/Ping",
      raw,
      raw,
      Buffer.from("ping"),
      new grpc.Metadata(),
      { deadline: Date.now() + 20_000 },
      (err, res) => {
        client.close();
        if (err) reject(err);
        else resolve(res!.toString());
      },
    );
  });
}

const NOW = new Date("2026-12-04T12:00:00Z");

describe("run TLS", function () {
  this.timeout(60_000);
  let tls: RunTls;
  let other: RunTls;
  let server: StartedServer;

  before(async () => {
    tls = tlsFromSecretData(await issueRunTls({ run: "ml/r1", dnsNames: ["r1-hub.ml.svc"], now: NOW }))!;
    other = tlsFromSecretData(await issueRunTls({ run: "ml/r2", dnsNames: [], now: NOW }))!;
    server = await startServer(
      (s) =>
        s.addService(PING, {
          ping: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from("pong")),
        }),
      { host: "127.0.0.1", port: 0, tls },
    );
  });
  after(() => server?.stop(100));

  it("issues a CA and a certificate it signed, for the run's name, its Services and loopback", () => {
    const ca = new X509Certificate(tls.ca);
    const leaf = new X509Certificate(tls.cert);
    expect(ca.ca).to.equal(true);
    expect(leaf.ca).to.equal(false);
    expect(leaf.verify(ca.publicKey)).to.equal(true);
    expect(leaf.verify(new X509Certificate(other.ca).publicKey)).to.equal(false);
    expect(leaf.checkIssued(ca)).to.equal(true);
    expect(leaf.checkHost(TLS_SERVER_NAME)).to.equal(TLS_SERVER_NAME);
    expect(leaf.checkHost("r1-hub.ml.svc")).to.equal("r1-hub.ml.svc");
    expect(leaf.checkHost("r2-hub.ml.svc")).to.equal(undefined);
    expect(leaf.checkIP("127.0.0.1")).to.equal("127.0.0.1");
    expect(new Date(leaf.validTo).getTime() - NOW.getTime()).to.equal(VALIDITY_DAYS * 24 * 3600 * 1000);
    expect(new Date(leaf.validFrom).getTime()).to.be.lessThan(NOW.getTime());
    expect(tls.key.toString()).to.match(/^-----BEGIN PRIVATE KEY-----/);
  });

  it("answers a client of the run", async () => {
    const c = clientCredentials(tls);
    expect(await ping(server.address, c.credentials, c.options)).to.equal("pong");
  });

  it("refuses a plaintext client, one without a client certificate, and one of another run's CA", async () => {
    const table: [string, grpc.ChannelCredentials, grpc.ChannelOptions][] = [
      ["plaintext", grpc.credentials.createInsecure(), {}],
      ["the CA but no certificate", grpc.credentials.createSsl(tls.ca), clientCredentials(tls).options],
      [
        "another run's CA and certificate",
        clientCredentials(other).credentials,
        clientCredentials(other).options,
      ],
      [
        "another run's certificate, this run's CA",
        grpc.credentials.createSsl(tls.ca, other.key, other.cert),
        clientCredentials(tls).options,
      ],
    ];
    for (const [name, credentials, options] of table) {
      const err = await ping(server.address, credentials, options).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err, name).to.not.equal(undefined);
      expect(err!.code, name).to.equal(grpc.status.UNAVAILABLE);
    }
  });

  it("carries the worker's and the operator's calls to a hub of the run, and refuses them from another run", async () => {
    const hub = await serve({ settings: settings(), tls });
    try {
      const worker = new HubClient({ address: hub.server.address, token: TOKEN, timeoutMs: 10_000, tls });
      expect((await worker.lease("w1", 1, 0)).tasks).to.be.an("array");
      worker.close();
      const stats = new HubStats({ timeoutMs: 10_000 });
      expect((await stats.read({ address: hub.server.address, token: TOKEN, tls })).backlog).to.be.a(
        "number",
      );
      const stranger = await stats.read({ address: hub.server.address, token: TOKEN, tls: other }).then(
        () => undefined,
        (e: L0Error) => e,
      );
      expect(stranger?.kind).to.equal("Unavailable");
      stats.close();
    } finally {
      await hub.close();
    }
  });

  it("reads the mounted Secret's files, naming the flag and file when one is missing or not PEM", () => {
    const dir = mkdtempSync(join(tmpdir(), "l0-tls-"));
    try {
      expect(readTlsDir("", "--tls-dir")).to.equal(undefined);
      expect(() => readTlsDir(dir, "--tls-dir (L0_HUB_TLS_DIR)")).to.throw(
        /--tls-dir \(L0_HUB_TLS_DIR\): cannot read .*ca\.crt/,
      );
      writeFileSync(join(dir, "ca.crt"), tls.ca);
      writeFileSync(join(dir, "tls.crt"), "not a certificate");
      writeFileSync(join(dir, "tls.key"), tls.key);
      expect(() => readTlsDir(dir, "--tls-dir")).to.throw(/--tls-dir: .*tls\.crt is not PEM/);
      writeFileSync(join(dir, "tls.crt"), tls.cert);
      expect(readTlsDir(dir, "--tls-dir")).to.deep.equal(tls);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
