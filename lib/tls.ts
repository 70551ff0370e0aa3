// TLS on a run's data plane: the hub, the weight service and the sidecars serve gRPC with the
// run's certificate and require one from every client (mutual TLS); every client verifies the
// server against the run's CA. The operator issues one CA and one certificate per run into the
// run token Secret (operator/run-tls.ts), mounted in every run pod: a client that does not hold
// a certificate of that run's CA is refused before it can send the token, and the token never
// crosses the pod network in plaintext. `l0 local` runs without it, on loopback.
//
// Peers reach each other by Service names and pod IPs; the certificate names one identity per
// run instead (TLS_SERVER_NAME, checked through `grpc.ssl_target_name_override`): trust is the
// run's CA, so any certificate it signed is the run's.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type * as nodeTls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { invalidField } from "./errors.js";

/** The Secret keys (and file names under the mounted Secret) of a run's TLS material. */
export const TLS_KEYS = { ca: "ca.crt", cert: "tls.crt", key: "tls.key" } as const;
/** The name every run certificate carries and every run client checks. */
export const TLS_SERVER_NAME = "l0-run";

export interface RunTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/**
 * The run's TLS material from a directory holding ca.crt, tls.crt and tls.key (the mounted
 * Secret); "" = none (plaintext). `field` names the flag in errors, e.g. "--tls-dir (L0_HUB_TLS_DIR)".
 */
export function readTlsDir(dir: string, field: string): RunTls | undefined {
  if (!dir) return undefined;
  const read = (name: string): Buffer => {
    const path = join(dir, name);
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw invalidField(field, `cannot read ${path}: ${(err as Error).message}`);
    }
    if (!data.toString("utf8").includes("-----BEGIN ")) {
      throw invalidField(field, `${path} is not PEM`);
    }
    return data;
  };
  return { ca: read(TLS_KEYS.ca), cert: read(TLS_KEYS.cert), key: read(TLS_KEYS.key) };
}

/** The run's TLS material from the token Secret's data (base64 values), as the operator reads it. */
export function tlsFromSecretData(data: Record<string, string> | undefined): RunTls | undefined {
  const get = (k: string): Buffer | undefined => (data?.[k] ? Buffer.from(data[k], "base64") : undefined);
  const [ca, cert, key] = [get(TLS_KEYS.ca), get(TLS_KEYS.cert), get(TLS_KEYS.key)];
  return ca && cert && key ? { ca, cert, key } : undefined;
}

/** Server credentials: the run's certificate, and a client certificate of the run's CA required. */
export function serverCredentials(tls: RunTls | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true);
}

/** Client credentials and the options that check the run's name; plaintext without TLS. */
export function clientCredentials(tls: RunTls | undefined): {
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
} {
  if (!tls) return { credentials: grpc.credentials.createInsecure(), options: {} };
  return {
    credentials: grpc.credentials.createSsl(tls.ca, tls.key, tls.cert),
    options: { "grpc.ssl_target_name_override": TLS_SERVER_NAME, "grpc.default_authority": TLS_SERVER_NAME },
  };
}

/**
 * Node `tls` server options with the same mutual TLS as serverCredentials: the run's certificate,
 * and a client certificate of the run's CA required (the weights bulk channel, lib/weights/bulk.ts).
 */
export function tlsServerOptions(tls: RunTls): nodeTls.TlsOptions {
  return { ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: true };
}

/** Node `tls.connect` options matching clientCredentials: the run's CA, its certificate, its name. */
export function tlsConnectOptions(tls: RunTls): nodeTls.ConnectionOptions {
  return { ca: tls.ca, cert: tls.cert, key: tls.key, servername: TLS_SERVER_NAME };
}
