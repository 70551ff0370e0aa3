// startKubeServer(): an in-process Kubernetes API server on 127.0.0.1:0 for operator tests,
// with the CRDs from crds/, a garbage collector, controller/kubelet simulation and faults.
// See README.md in this folder for what it covers and what it does not.
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { type AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { ApplyManager } from "./apply.js";
import { Faults } from "./faults.js";
import { GarbageCollector } from "./gc.js";
import { History } from "./history.js";
import { createHandler } from "./http.js";
import { ResourceTable } from "./resources.js";
import { createCrValidator } from "./schema.js";
import { Simulation, type SimOptions } from "./sim.js";
import { Store } from "./store.js";
import { testCertificate } from "./tls.js";
import { type Obj, type ResourceType } from "./types.js";
import { bookmarkAll, Pager } from "./watch.js";

export interface KubeServerOptions {
  /** Directory of CustomResourceDefinition YAML files to serve (e.g. "crds"); none when absent. */
  crdDir?: string;
  /** Events kept for watch resumption; older resourceVersions get 410 Gone. Default 1000. */
  historyWindow?: number;
  /** Bearer token clients must send; a random one by default ("" turns auth off). */
  token?: string;
  /** Namespaces created at start (besides default, kube-system, kube-public, kube-node-lease). */
  namespaces?: string[];
  /** Interval of BOOKMARK events on watches that allow them. Default 1000 ms. */
  bookmarkIntervalMs?: number;
  /** Controllers and kubelet stand-in; `false` serves the API alone. Default on. */
  sim?: false | SimOptions;
  clock?: () => Date;
  /**
   * Serve HTTPS with a throwaway self-signed certificate (openssl, once per process) that the
   * kubeconfig trusts; needed by kubectl/client-go, which send bearer tokens only over TLS.
   */
  tls?: boolean;
}

export interface KubeServer {
  /** http(s)://127.0.0.1:PORT */
  url: string;
  token: string | undefined;
  /** A KubeConfig for @kubernetes/client-node pointing at this server (namespace "default"). */
  kubeConfig(namespace?: string): KubeConfig;
  /** The same as kubeconfig YAML, for loadFromString or a file a child process reads. */
  kubeConfigYaml(namespace?: string): string;
  store: Store;
  types: ResourceTable;
  faults: Faults;
  sim: Simulation;
  /** Resolves when garbage collection and namespace finalization have no pass pending. */
  settled(): Promise<void>;
  /** Forgets watch history up to now: any watch from an older resourceVersion gets 410. */
  compact(): void;
  setHistoryWindow(n: number): void;
  /** Sends a BOOKMARK now on every watch that allows them. */
  bookmark(): void;
  /** Direct reads for assertions, bypassing HTTP and faults. */
  get(apiVersion: string, kind: string, namespace: string, name: string): Obj | undefined;
  list(apiVersion: string, kind: string, namespace?: string): Obj[];
  stop(): Promise<void>;
}

const SYSTEM_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

export async function startKubeServer(opts: KubeServerOptions = {}): Promise<KubeServer> {
  const types = ResourceTable.fromDir(opts.crdDir);
  const history = new History(opts.historyWindow ?? 1000);
  const clock = opts.clock ?? (() => new Date());
  const store = new Store(types, createCrValidator(types.crds), history, clock);
  const gc = new GarbageCollector(store);
  const faults = new Faults();
  const token = opts.token === "" ? undefined : (opts.token ?? randomBytes(16).toString("hex"));
  const nsType = types.byPath("", "v1", "namespaces")!;
  for (const name of [...SYSTEM_NAMESPACES, ...(opts.namespaces ?? [])])
    store.create(nsType, "", { metadata: { name } });
  const watchers = new Set<() => void>();
  let address = "127.0.0.1:0";
  const tls = opts.tls ? testCertificate() : undefined;
  const handler = createHandler({
    table: types,
    store,
    history,
    faults,
    pager: new Pager(),
    apply: new ApplyManager(store),
    token,
    bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 1000,
    serverAddress: () => address,
    watchers,
  });
  const server: Server = tls
    ? createTlsServer({ cert: tls.cert, key: tls.key }, handler)
    : createServer(handler);
  server.keepAliveTimeout = 1000;
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => ok());
  });
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const url = `${tls ? "https" : "http"}://${address}`;
  const sim = new Simulation(store, clock, opts.sim === false ? { enabled: false } : (opts.sim ?? {}));
  const find = (apiVersion: string, kind: string): ResourceType => {
    const t = types.byKind(apiVersion, kind);
    if (!t) throw new Error(`kube server: no resource ${apiVersion} ${kind}`);
    return t;
  };
  const kubeConfigYaml = (namespace = "default"): string =>
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "l0-test",
          cluster: tls
            ? { server: url, "certificate-authority-data": Buffer.from(tls.cert).toString("base64") }
            : { server: url, "insecure-skip-tls-verify": true },
        },
      ],
      users: [{ name: "l0-test", user: token ? { token } : {} }],
      contexts: [{ name: "l0-test", context: { cluster: "l0-test", user: "l0-test", namespace } }],
      "current-context": "l0-test",
    });
  return {
    url,
    token,
    kubeConfigYaml,
    kubeConfig(namespace) {
      const kc = new KubeConfig();
      kc.loadFromString(kubeConfigYaml(namespace));
      return kc;
    },
    store,
    types,
    faults,
    sim,
    settled: async () => {
      // Controllers and GC wake each other: wait until neither has a pass pending.
      for (let i = 0; i < 50 && (i === 0 || gc.pending || sim.pending); i++) {
        await gc.idle();
        await sim.idle();
      }
    },
    compact: () => history.compact(store.resourceVersion),
    setHistoryWindow: (n) => history.setWindow(n),
    bookmark: () => bookmarkAll(history, store.resourceVersion),
    get: (apiVersion, kind, namespace, name) => {
      const o = store.peek(find(apiVersion, kind), namespace, name);
      return o ? structuredClone(o) : undefined;
    },
    list: (apiVersion, kind, namespace) =>
      store.list(find(apiVersion, kind), namespace).map((o) => structuredClone(o)),
    async stop() {
      sim.stop();
      gc.stop();
      for (const end of [...watchers]) end();
      await new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      });
    },
  };
}
