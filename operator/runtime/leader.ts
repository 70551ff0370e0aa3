// Leader election on a coordination.k8s.io/v1 Lease (client-go's leaderelection shape): one active
// replica; others poll and take over when the holder stops renewing for leaseDuration (judged by
// when *we* last saw the record change, so clock skew between replicas does not matter). A clean
// stop releases the lease, so handover is fast.
import { type KubernetesObject } from "@kubernetes/client-node";
import { type Logger, errorFields } from "../../lib/log.js";
import { type KubeApi, isStatus } from "./kube.js";

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
type Lease = KubernetesObject & { spec?: LeaseSpec };

export interface LeaderElectionOptions {
  api: KubeApi;
  namespace: string;
  name: string;
  identity: string;
  logger: Logger;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  now?: () => Date;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

const micro = (d: Date): string => d.toISOString().replace("Z", "000Z");

export class LeaderElector {
  readonly #o: Required<Omit<LeaderElectionOptions, "now">> & { now: () => Date };
  #leading = false;
  #stopped = false;
  #observed: { record: string; at: number } | undefined;
  #lastRenew = 0;
  #timer: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(opts: LeaderElectionOptions) {
    this.#o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      now: () => new Date(),
      ...opts,
    };
  }

  get leading(): boolean {
    return this.#leading;
  }

  start(): void {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const ok = await this.#tryAcquireOrRenew().catch((err: unknown) => {
        this.#o.logger.warn("leader election request failed", { lease: this.#o.name, ...errorFields(err) });
        return false;
      });
      const t = this.#o.now().getTime();
      if (ok) {
        this.#lastRenew = t;
        if (!this.#leading && !this.#stopped) {
          this.#leading = true;
          this.#o.logger.info("became leader", { lease: this.#o.name, identity: this.#o.identity });
          this.#o.onStartedLeading();
        }
      } else if (this.#leading && t - this.#lastRenew > this.#o.renewDeadlineMs) {
        this.#leading = false;
        this.#o.logger.warn("lost leadership", { lease: this.#o.name, identity: this.#o.identity });
        this.#o.onStoppedLeading();
      }
      if (this.#stopped) break;
      await new Promise<void>((r) => {
        this.#timer = setTimeout(r, this.#o.retryPeriodMs);
        this.#wake = r;
      });
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity } = this.#o;
    const now = this.#o.now();
    const spec: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
      renewTime: micro(now),
    };
    let lease: Lease;
    try {
      lease = await api.get<Lease>("Lease", namespace, name);
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      await api.create<Lease>("Lease", {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name, namespace },
        spec: { ...spec, acquireTime: micro(now), leaseTransitions: 0 },
      });
      return true;
    }
    const cur = lease.spec ?? {};
    const record = JSON.stringify(cur);
    if (this.#observed?.record !== record) this.#observed = { record, at: now.getTime() };
    const holder = cur.holderIdentity ?? "";
    const mine = holder === identity;
    const expired =
      holder === "" ||
      now.getTime() - this.#observed.at > (cur.leaseDurationSeconds ?? 0) * 1000 ||
      // Released by its holder: leaseDurationSeconds 1 and no holder are client-go's release marks.
      false;
    if (!mine && !expired) return false;
    const next: Lease = {
      ...lease,
      spec: {
        ...cur,
        ...spec,
        acquireTime: mine ? cur.acquireTime : micro(now),
        leaseTransitions: (cur.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      const updated = await api.replace<Lease>("Lease", next);
      this.#observed = { record: JSON.stringify(updated.spec ?? {}), at: now.getTime() };
      return true;
    } catch (err) {
      if (isStatus(err, 409)) return false; // someone else renewed or took it first
      throw err;
    }
  }

  /** Stops campaigning; when leading, releases the lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    await this.#loop;
    if (!this.#leading) return;
    this.#leading = false;
    try {
      const lease = await this.#o.api.get<Lease>("Lease", this.#o.namespace, this.#o.name);
      if (lease.spec?.holderIdentity === this.#o.identity) {
        await this.#o.api.replace<Lease>("Lease", {
          ...lease,
          spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1 },
        });
      }
    } catch (err) {
      this.#o.logger.warn("could not release the lease", { lease: this.#o.name, ...errorFields(err) });
    }
    this.#o.onStoppedLeading();
  }
}
