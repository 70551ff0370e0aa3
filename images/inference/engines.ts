// Engine adapters: ask an inference engine to load a verified version from disk and confirm it
// serves it. SGLang and the local engine take the directory in the request; vLLM reloads from
// the path it was started with (the sidecar's `current` link). See README.md for each engine.

export type EngineKind = "sglang" | "vllm" | "local" | "none";
export const ENGINE_KINDS: readonly EngineKind[] = ["sglang", "vllm", "local", "none"];

export interface LoadRequest {
  /** The version's directory (final place, complete and verified). */
  dir: string;
  version: number;
  /** Model name, for engines that check it. */
  model: string;
}

export interface EngineAdapter {
  readonly kind: EngineKind;
  /**
   * True when a failed load leaves the engine on its previous weights by itself (SGLang rolls
   * back; the local engine swaps only after a full load). When false, the sidecar points the
   * engine back at the previous version and loads it again.
   */
  readonly keepsPreviousOnFailure: boolean;
  /** Resolves once the engine serves `req.version`; throws (naming the engine's answer) otherwise. */
  load(req: LoadRequest, signal: AbortSignal): Promise<void>;
  /**
   * Whether the engine still serves `req.version`: false when it verifiably does not (it restarted
   * on other weights), null when it cannot tell now. Absent: this engine cannot tell at all.
   */
  serves?(req: LoadRequest, signal: AbortSignal): Promise<boolean | null>;
}

export interface EngineOptions {
  kind: EngineKind;
  /** Base URL of the engine, e.g. http://127.0.0.1:30000. */
  url: string;
  /** Bearer key the engine was started with (--api-key), if any. */
  apiKey?: string;
  /** Deadline of one load call. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

async function post(o: EngineOptions, path: string, body: unknown, signal: AbortSignal): Promise<unknown> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
  const timeout = AbortSignal.timeout(o.timeoutMs ?? 600_000);
  const res = await (o.fetch ?? fetch)(`${o.url}${path}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.any([signal, timeout]),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${o.kind} ${path}: HTTP ${res.status}: ${text.slice(0, 500)}`);
  try {
    return text ? (JSON.parse(text) as unknown) : {};
  } catch {
    throw new Error(`${o.kind} ${path}: answer is not JSON: ${text.slice(0, 200)}`);
  }
}

/** SGLang-shaped answer: `{"success": bool, "message": str}`. */
function checkSuccess(kind: string, path: string, answer: unknown): Record<string, unknown> {
  const a = (answer ?? {}) as Record<string, unknown>;
  if (a.success !== true)
    throw new Error(
      `${kind} ${path}: load failed: ${typeof a.message === "string" ? a.message : JSON.stringify(a)}`,
    );
  return a;
}

export function createEngine(o: EngineOptions): EngineAdapter {
  switch (o.kind) {
    case "sglang":
      return {
        kind: "sglang",
        keepsPreviousOnFailure: true,
        load: async (req, signal) => {
          const a = await post(
            o,
            "/update_weights_from_disk",
            { model_path: req.dir, load_format: "auto" },
            signal,
          );
          checkSuccess("sglang", "/update_weights_from_disk", a);
        },
      };
    case "local":
      return {
        kind: "local",
        keepsPreviousOnFailure: true,
        load: async (req, signal) => {
          const path = "/update_weights_from_disk";
          const a = checkSuccess(
            "local",
            path,
            await post(o, path, { model_path: req.dir, policy_version: req.version }, signal),
          );
          if (a.policy_version !== undefined && Number(a.policy_version) !== req.version)
            throw new Error(
              `local ${path}: engine says it serves v${String(a.policy_version)}, expected v${req.version}`,
            );
        },
        // The model card carries the version it serves (-1 after a restart, before any load).
        serves: async (req, signal) => {
          const headers: Record<string, string> = o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {};
          const res = await (o.fetch ?? fetch)(`${o.url}/v1/models`, {
            headers,
            signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]),
          });
          if (!res.ok) return null;
          const v = ((await res.json()) as { data?: { policy_version?: unknown }[] }).data?.[0]
            ?.policy_version;
          return typeof v === "number" ? v === req.version : null;
        },
      };
    case "vllm":
      return {
        kind: "vllm",
        keepsPreviousOnFailure: false,
        load: async (_req, signal) => {
          // Reloads from the --model path, which is the sidecar's `current` link (already switched).
          await post(o, "/collective_rpc", { method: "reload_weights" }, signal);
          const headers: Record<string, string> = o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {};
          const res = await (o.fetch ?? fetch)(`${o.url}/v1/models`, { headers, signal });
          if (!res.ok) throw new Error(`vllm /v1/models after reload: HTTP ${res.status}`);
        },
      };
    case "none":
      return { kind: "none", keepsPreviousOnFailure: true, load: () => Promise.resolve() };
  }
}
