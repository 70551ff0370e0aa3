// A watch-backed cache of one kind (client-go's informer shape): list, then watch from the list's
// resourceVersion; a 410 Gone or a broken stream relists (with jitter) and reports the difference
// as add/update/delete, so nothing is missed. Reads never hit the API. An owner-UID index answers
// "children of X" in O(children).
import { type KubernetesObject } from "@kubernetes/client-node";
import { type Logger, errorFields } from "../../lib/log.js";
import { ApiError, type Kind, type KubeApi, type WatchEvent } from "./kube.js";

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(prev: T, obj: T): void;
  delete?(obj: T): void;
}

export const keyOf = (o: KubernetesObject): string =>
  `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;

export interface InformerOptions<T> {
  api: KubeApi;
  kind: Kind;
  /** Watch one namespace; undefined = all. */
  namespace?: string;
  /** Only objects with these labels (list and watch), e.g. what the operator itself created. */
  labelSelector?: string;
  handlers: InformerHandlers<T>;
  logger: Logger;
  /** Upper bound of the random delay before a re-watch or relist. */
  relistJitterMs?: number;
}

export class Informer<T extends KubernetesObject> {
  readonly kind: Kind;
  readonly #o: InformerOptions<T>;
  readonly #store = new Map<string, T>();
  readonly #byOwner = new Map<string, Set<string>>();
  #rv = "";
  #stopped = false;
  #watch: { stop(): void } | undefined;
  #synced = false;
  #loop: Promise<void> | undefined;

  constructor(opts: InformerOptions<T>) {
    this.kind = opts.kind;
    this.#o = opts;
  }

  get synced(): boolean {
    return this.#synced;
  }
  get(namespace: string, name: string): T | undefined {
    return this.#store.get(`${namespace}/${name}`);
  }
  list(namespace?: string): T[] {
    const all = [...this.#store.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }
  /** Objects with an ownerReference to `uid`. */
  ownedBy(uid: string): T[] {
    return [...(this.#byOwner.get(uid) ?? [])].map((k) => this.#store.get(k)).filter((o): o is T => !!o);
  }

  #index(key: string, obj: T | undefined, prev: T | undefined): void {
    for (const ref of prev?.metadata?.ownerReferences ?? []) this.#byOwner.get(ref.uid)?.delete(key);
    for (const ref of obj?.metadata?.ownerReferences ?? []) {
      let set = this.#byOwner.get(ref.uid);
      if (!set) this.#byOwner.set(ref.uid, (set = new Set()));
      set.add(key);
    }
  }

  #put(obj: T): void {
    const key = keyOf(obj);
    const prev = this.#store.get(key);
    this.#store.set(key, obj);
    this.#index(key, obj, prev);
    if (!prev) this.#o.handlers.add?.(obj);
    else if (prev.metadata?.resourceVersion !== obj.metadata?.resourceVersion)
      this.#o.handlers.update?.(prev, obj);
  }

  #remove(obj: T): void {
    const key = keyOf(obj);
    const prev = this.#store.get(key);
    if (!prev) return;
    this.#store.delete(key);
    this.#index(key, undefined, prev);
    this.#o.handlers.delete?.(prev);
  }

  async #relist(): Promise<void> {
    const sel = this.#o.labelSelector ? { labelSelector: this.#o.labelSelector } : {};
    const list = await this.#o.api.list<T>(this.kind, this.#o.namespace, sel);
    const seen = new Set<string>();
    for (const item of list.items) {
      // List items carry no kind; keep objects self-describing for the reconcilers.
      seen.add(keyOf(item));
      this.#put(item);
    }
    for (const [key, obj] of [...this.#store]) if (!seen.has(key)) this.#remove(obj);
    this.#rv = list.metadata.resourceVersion ?? "";
    this.#synced = true;
  }

  #onEvent = (e: WatchEvent<T>): void => {
    if (e.type === "ERROR") {
      const st = e.object as unknown as { code?: number; message?: string };
      throw new ApiError(st.code ?? 500, "WatchError", st.message ?? "watch error");
    }
    const rv = e.object.metadata?.resourceVersion;
    if (rv) this.#rv = rv;
    if (e.type === "BOOKMARK") return;
    if (e.type === "DELETED") this.#remove(e.object);
    else this.#put(e.object);
  };

  #wake: (() => void) | undefined;
  async #sleep(maxMs: number): Promise<void> {
    await new Promise<void>((r) => {
      const t = setTimeout(r, Math.round(maxMs * (0.5 + Math.random() / 2)));
      this.#wake = () => {
        clearTimeout(t);
        r();
      };
    });
  }

  /** Lists once (resolves when synced, rejects if that fails), then watches until stop(). */
  async start(): Promise<void> {
    await this.#relist();
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const jitter = this.#o.relistJitterMs ?? 1000;
    let needRelist = false;
    while (!this.#stopped) {
      try {
        if (needRelist) await this.#relist();
        needRelist = false;
        let thrown: Error | undefined;
        const sel = this.#o.labelSelector ? { labelSelector: this.#o.labelSelector } : {};
        const handle = this.#o.api.watch<T>(
          this.kind,
          this.#o.namespace,
          this.#rv,
          (e) => {
            try {
              this.#onEvent(e);
            } catch (err) {
              thrown = err as Error;
              handle.stop();
            }
          },
          sel,
        );
        this.#watch = handle;
        const ended = await handle.done;
        const err = thrown ?? ended;
        if (this.#stopped) return;
        if (err) {
          // 410 Gone: our resourceVersion is too old; anything else: relist to be safe.
          needRelist = true;
          this.#o.logger.debug("watch ended, relisting", { kind: this.kind, ...errorFields(err) });
          await this.#sleep(jitter);
        } else {
          await this.#sleep(Math.min(jitter, 100));
        }
      } catch (err) {
        needRelist = true;
        this.#o.logger.warn("relist failed", { kind: this.kind, ...errorFields(err) });
        await this.#sleep(jitter);
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watch?.stop();
    this.#wake?.();
    await this.#loop;
  }
}
