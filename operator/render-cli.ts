// `l0 render -f run.yaml`: prints what the operator would create for a manifest (operator/render.ts).
import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { stringify } from "yaml";
import { runMain } from "../lib/run-main.js";
import { invalidFields } from "../lib/errors.js";

export function register(program: Command): void {
  program
    .command("render")
    .description("Print every object the operator would create for a TrainingRun/AgentWorkerPool manifest")
    .requiredOption("-f, --file <path>", "manifest (YAML or JSON, several documents allowed)")
    .addOption(new Option("-o, --output <format>", "output format").choices(["yaml", "json"]).default("yaml"))
    .option("-n, --namespace <ns>", "namespace of objects that name none", "default")
    .action((opts: { file: string; output: "yaml" | "json"; namespace: string }) =>
      runMain("render", async () => {
        const { renderManifest } = await import("./render.js");
        let text: string;
        try {
          text = readFileSync(opts.file, "utf8");
        } catch (err) {
          throw invalidFields([{ field: opts.file, description: `cannot read: ${(err as Error).message}` }]);
        }
        const objs = renderManifest(text, opts.file, { namespace: opts.namespace });
        process.stdout.write(formatObjects(objs, opts.output));
      }),
    );
}

/** Multi-document YAML (like `helm template`), or a v1 List in JSON (like `kubectl get -o json`). */
export function formatObjects(objs: readonly object[], output: "yaml" | "json"): string {
  if (output === "json")
    return `${JSON.stringify({ apiVersion: "v1", kind: "List", items: objs }, null, 2)}\n`;
  return objs.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join("");
}
