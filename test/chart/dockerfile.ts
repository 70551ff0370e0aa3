// A small Dockerfile reader and the conventions every L0 image follows, as a pure function that
// returns the problems it finds. No Docker engine runs here, so this is how images are checked.
import { existsSync } from "node:fs";
import { join } from "node:path";

export interface Instruction {
  cmd: string;
  args: string;
  line: number;
}

/** Instructions with continuation lines joined and comments dropped (as Docker reads them). */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = "";
  let start = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (buf === "" && (line === "" || line.startsWith("#"))) return;
    if (buf !== "" && line.startsWith("#")) return;
    if (buf === "") start = i + 1;
    if (line.endsWith("\\")) {
      buf += line.slice(0, -1).trimEnd() + " ";
      return;
    }
    buf += line;
    const m = /^(\w+)\s+([\s\S]*)$/.exec(buf.trim());
    if (m) out.push({ cmd: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = "";
  });
  return out;
}

/** A .dockerignore pattern as a regular expression over context-relative paths. */
function ignoreRegex(pattern: string): RegExp {
  const body = pattern
    .replace(/^\//, "")
    .replace(/[.+^${}()|[\]]/g, "\\$&")
    .replace(/\*\*\//g, "\u0000")
    .replace(/\*/g, "[^/]*")
    .replace(/\?/g, "[^/]")
    .replace(/\u0000/g, "(?:.*/)?");
  return new RegExp(`^${body}(?:/.*)?$`);
}
export function isIgnored(path: string, patterns: string[]): boolean {
  let ignored = false;
  for (const p of patterns) {
    if (p.startsWith("!")) {
      if (ignoreRegex(p.slice(1)).test(path)) ignored = false;
    } else if (ignoreRegex(p).test(path)) ignored = true;
  }
  return ignored;
}
export function parseIgnore(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS)/i;
const SECRET_VALUE =
  /(-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{20,}|xox[bp]-[A-Za-z0-9-]+)/;
const SECRET_FILE = /(^|\/)(\.env(\..*)?|id_rsa.*|.*\.pem|.*\.key|.*kubeconfig.*)$/;
const OCI_LABELS = ["title", "source", "licenses", "version"].map((k) => `org.opencontainers.image.${k}`);

export interface Context {
  /** Repository root (the build context). */
  root: string;
  /** .dockerignore patterns that apply to this Dockerfile. */
  ignore: string[];
}

/** Every convention this Dockerfile breaks, each naming its line; empty when it is clean. */
export function dockerfileProblems(text: string, ctx: Context): string[] {
  const problems: string[] = [];
  const ins = parseDockerfile(text);
  const at = (i: Instruction, msg: string): void => void problems.push(`line ${i.line}: ${msg}`);

  // ARG defaults before the first FROM parameterize base images.
  const globalArgs: Record<string, string> = {};
  for (const i of ins) {
    if (i.cmd === "FROM") break;
    if (i.cmd === "ARG") {
      const [k, v] = i.args.split("=", 2);
      if (k && v !== undefined) globalArgs[k.trim()] = v.trim();
    }
  }
  const expand = (s: string): string =>
    s.replace(/\$\{?(\w+)\}?/g, (_, name: string) => globalArgs[name] ?? `\${${name}}`);

  const stages: string[] = [];
  let lastFrom = -1;
  ins.forEach((i, n) => {
    if (i.cmd !== "FROM") return;
    lastFrom = n;
    const words = i.args.split(/\s+/).filter((w) => !w.startsWith("--"));
    const image = expand(words[0] ?? "");
    const alias = words[1]?.toUpperCase() === "AS" ? words[2] : undefined;
    if (stages.includes(image)) {
      // FROM an earlier stage: nothing to pin.
    } else if (image.includes("${")) at(i, `base image ${image} uses an ARG without a default`);
    else if (/@sha256:[a-f0-9]{64}$/.test(image)) {
      // pinned by digest
    } else {
      const tag = /:([^/:@]+)$/.exec(image)?.[1];
      if (!tag) at(i, `base image ${image} has no tag: pin a version or a digest`);
      else if (tag === "latest" || !/\d/.test(tag)) at(i, `base image ${image} is not pinned to a version`);
    }
    if (alias) stages.push(alias);
  });
  if (stages.length === 0 || ins.filter((i) => i.cmd === "FROM").length < 2)
    problems.push("not a multi-stage build (build tools must not ship in the image)");

  const final = ins.slice(lastFrom + 1);
  const users = final.filter((i) => i.cmd === "USER");
  const user = users.at(-1);
  if (!user) problems.push("the final stage sets no USER: the image would run as root");
  else {
    const [name, group] = user.args.split(":");
    if (name === "root" || name === "0" || group === "0" || group === "root")
      at(user, `USER ${user.args} is root`);
  }
  const lastRun = final.map((i) => i.cmd).lastIndexOf("RUN");
  if (user && lastRun > final.indexOf(user))
    problems.push("a RUN after the final USER runs as that user: keep USER last");

  for (const i of ins) {
    if (i.cmd === "ENV" || i.cmd === "ARG") {
      for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g))
        if (SECRET_NAME.test(m[1]!) && m[2] !== '""')
          at(i, `${i.cmd} ${m[1]} looks like a secret baked into the image`);
    }
    if (SECRET_VALUE.test(i.args)) at(i, "contains what looks like a credential");
    if (i.cmd === "ADD" && /https?:\/\//.test(i.args))
      at(i, "ADD of a URL: download in a RUN with a checksum instead");
    if (i.cmd === "RUN" && /apt-get install/.test(i.args)) {
      if (!i.args.includes("--no-install-recommends"))
        at(i, "apt-get install without --no-install-recommends");
      if (!i.args.includes("rm -rf /var/lib/apt/lists"))
        at(i, "apt lists are not removed after apt-get install");
    }
    if (i.cmd === "RUN" && /\bsudo\b/.test(i.args)) at(i, "sudo in a build step");
    if (i.cmd === "COPY" || i.cmd === "ADD") {
      const words = i.args.split(/\s+/);
      const from = words.find((w) => w.startsWith("--from="))?.slice(7);
      const paths = words.filter((w) => !w.startsWith("--"));
      const sources = paths.slice(0, -1);
      if (from !== undefined) {
        if (!stages.includes(from)) at(i, `COPY --from=${from}: no such earlier stage`);
        continue;
      }
      for (const s of sources) {
        if (SECRET_FILE.test(s)) at(i, `copies ${s}, which looks like a secret`);
        if (s === "." || s === "./") continue;
        if (!existsSync(join(ctx.root, s))) at(i, `COPY source ${s} does not exist in the repository`);
        else if (isIgnored(s.replace(/\/$/, ""), ctx.ignore))
          at(i, `COPY source ${s} is excluded by the .dockerignore`);
      }
    }
  }

  const labels = ins
    .filter((i) => i.cmd === "LABEL")
    .map((i) => i.args)
    .join(" ");
  for (const l of OCI_LABELS) if (!labels.includes(l + "=")) problems.push(`missing OCI label ${l}`);

  const entry = final.filter((i) => i.cmd === "ENTRYPOINT").at(-1);
  if (!entry) problems.push("the final stage has no ENTRYPOINT");
  else if (!entry.args.startsWith("["))
    at(entry, "ENTRYPOINT in shell form: use the exec form so signals reach the program");

  for (const pattern of [".git", "**/node_modules", "**/.env"])
    if (!ctx.ignore.includes(pattern)) problems.push(`the .dockerignore does not exclude ${pattern}`);
  return problems;
}

/** The exec-form ENTRYPOINT + CMD of the final stage, e.g. ["node", "/app/bin/l0.js", "worker"]. */
export function command(text: string): string[] {
  const ins = parseDockerfile(text);
  const lastFrom = ins.map((i) => i.cmd).lastIndexOf("FROM");
  const final = ins.slice(lastFrom + 1);
  const json = (cmd: string): string[] => {
    const i = final.filter((x) => x.cmd === cmd).at(-1);
    return i ? (JSON.parse(i.args) as string[]) : [];
  };
  return [...json("ENTRYPOINT"), ...json("CMD")];
}
