// The operator's one client of the hubs' Stats call, shared by the TrainingRun reconciler (the
// run's status) and the autoscaler (the pool's size): one cached gRPC client per hub address,
// the run token as bearer metadata, a deadline on every call, no retries (the next reconcile
// tries again). Also the one place that says where a run's hub is.
import { type V1Secret } from "@kubernetes/client-node";
import { type ResolvedTrainingRun } from "../gen/crds/index.js";
import { call, channelOptions } from "../lib/grpc.js";
import { clientCredentials, type RunTls, tlsFromSecretData } from "../lib/tls.js";
import { RolloutClient, type l0 } from "../lib/proto.js";
import { names } from "./labels.js";

/** Where a run's hub is, the token to call it with, and the run's TLS material (absent in a Secret from before TLS). */
export interface HubTarget {
  address: string;
  token: string;
  tls?: RunTls;
}

/** The hub's in-cluster address: its Service on the run's hub port. */
export function hubAddress(run: Pick<ResolvedTrainingRun, "metadata" | "spec">): string {
  const name = run.metadata?.name ?? "";
  const ns = run.metadata?.namespace ?? "default";
  return `${names.hubService(name)}.${ns}.svc:${run.spec.trainer.hubPort}`;
}

/** The run's hub target, or why it cannot be called yet (no token Secret). */
export function hubTarget(
  run: Pick<ResolvedTrainingRun, "metadata" | "spec">,
  secret: V1Secret | undefined,
): HubTarget | { missing: string } {
  const token = secret?.data?.token;
  if (!token) return { missing: `run token Secret ${names.token(run.metadata?.name ?? "")} not found` };
  return {
    address: hubAddress(run),
    token: Buffer.from(token, "base64").toString("utf8"),
    tls: tlsFromSecretData(secret?.data),
  };
}

/** Stats responses are small; this bounds what a misbehaving hub can make the operator buffer. */
const MAX_MESSAGE_BYTES = 1024 * 1024;

export class HubStats {
  readonly #clients = new Map<string, InstanceType<typeof RolloutClient>>();
  /** The certificate each cached client was made with (undefined: plaintext). */
  readonly #tls = new Map<string, string | undefined>();
  readonly #timeoutMs: number;

  constructor(opts: { timeoutMs?: number } = {}) {
    this.#timeoutMs = opts.timeoutMs ?? 2000;
  }

  /** One Stats call; rejects (L0Error) when the hub cannot be read within the deadline. */
  read(target: HubTarget): Promise<l0.v1.StatsResponse> {
    let client = this.#clients.get(target.address);
    if (client && this.#tls.get(target.address) !== target.tls?.cert.toString("base64")) {
      this.drop(target.address); // the Secret gained (or changed) its TLS material
      client = undefined;
    }
    if (!client) {
      const { credentials, options } = clientCredentials(target.tls);
      client = new RolloutClient(target.address, credentials, {
        ...channelOptions(MAX_MESSAGE_BYTES),
        ...options,
      });
      this.#clients.set(target.address, client);
      this.#tls.set(target.address, target.tls?.cert.toString("base64"));
    }
    return call(client.stats, client, {}, { token: target.token, timeoutMs: this.#timeoutMs });
  }

  /** Drops the client of one hub (its run or pool was deleted). */
  drop(address: string): void {
    this.#clients.get(address)?.close();
    this.#clients.delete(address);
    this.#tls.delete(address);
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
    this.#tls.clear();
  }
}
