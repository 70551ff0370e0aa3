// Container images, checked without a Docker engine: each images/*/Dockerfile follows the
// conventions (pinned bases, multi-stage, non-root USER last, no secrets, OCI labels, exec-form
// entrypoint) and its entrypoint is a program that exists in this repository.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { command, dockerfileProblems, isIgnored, parseDockerfile, parseIgnore } from "./dockerfile.js";
import { ROOT } from "./helm.js";

const IMAGES = {
  operator: "operator",
  worker: "worker",
  trainer: "hub",
  inference: "sidecar",
} as const;

const read = (p: string): string => readFileSync(join(ROOT, p), "utf8");
const ctxFor = (image: string) => ({
  root: ROOT,
  ignore: parseIgnore(read(`images/${image}/Dockerfile.dockerignore`)),
});

/** The subcommands `l0 --help` lists (one process for all images: tsx start-up is slow here). */
let commands: string[] | undefined;
function registered(): string[] {
  if (!commands) {
    const r = spawnSync(process.execPath, ["bin/l0.js", "--help"], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 30_000,
    });
    if (r.status !== 0) throw new Error(`l0 --help failed: ${r.stderr}`);
    const section = r.stdout.split(/^Commands:$/m)[1] ?? "";
    commands = [...section.matchAll(/^ {2}(\w[\w-]*)/gm)].map((m) => m[1]!);
  }
  return commands;
}

describe("images: Dockerfile conventions", function () {
  this.timeout(60_000);

  for (const [image, subcommand] of Object.entries(IMAGES)) {
    describe(`images/${image}/Dockerfile`, () => {
      it("exists with its own .dockerignore", () => {
        expect(existsSync(join(ROOT, `images/${image}/Dockerfile`))).to.equal(true);
        expect(existsSync(join(ROOT, `images/${image}/Dockerfile.dockerignore`))).to.equal(true);
      });

      it("follows the conventions (pinned bases, multi-stage, non-root, no secrets, labels)", () => {
        expect(dockerfileProblems(read(`images/${image}/Dockerfile`), ctxFor(image))).to.deep.equal([]);
      });

      it(`runs \`l0 ${subcommand}\` from files that exist in the repository`, () => {
        // The worker runs under tini: Node as PID 1 never reaps the sandbox inits left to it.
        const init = image === "worker" ? ["/usr/bin/tini", "--"] : [];
        const full = command(read(`images/${image}/Dockerfile`));
        expect(full.slice(0, init.length)).to.deep.equal(init);
        const argv = full.slice(init.length);
        expect(argv).to.deep.equal(["node", "/app/bin/l0.js", subcommand]);
        expect(existsSync(join(ROOT, argv[1]!.replace(/^\/app\//, "")))).to.equal(true);
        // The subcommand is registered in `l0` (no Docker here, so ask the checkout's l0).
        expect(registered(), `l0 has no ${subcommand} command`).to.include(subcommand);
      });
    });
  }

  it("the build context keeps every source the image's `npm run build` compiles", () => {
    // tsc's own list of the build's inputs (tsconfig.build.json, imports followed), minus generated
    // code that the build writes itself: none may be excluded by an image's .dockerignore.
    const r = spawnSync(
      process.execPath,
      ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json", "--listFilesOnly"],
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    expect(r.status, r.stderr).to.equal(0);
    const inputs = r.stdout
      .split("\n")
      .filter((f) => f.startsWith(ROOT + "/") && !f.includes("/node_modules/"))
      .map((f) => f.slice(ROOT.length + 1))
      .filter((f) => !f.startsWith("gen/"));
    expect(inputs).to.include("cli/main.ts");
    for (const image of Object.keys(IMAGES)) {
      const { ignore } = ctxFor(image);
      const excluded = inputs.filter((f) => isIgnored(f, ignore));
      expect(excluded, `images/${image}/Dockerfile.dockerignore excludes build inputs`).to.deep.equal([]);
    }
  });

  it("the worker image has python3, libseccomp, bubblewrap and tini for the sandbox, and ships kernel.py", () => {
    const text = read("images/worker/Dockerfile");
    expect(text).to.match(/apt-get install[^\n]*python3 python3-seccomp bubblewrap[^\n]* tini/);
    expect(text).to.match(
      /COPY images\/worker\/kernel\/kernel.py images\/worker\/kernel\/seccomp_filter.py /,
    );
  });

  it("the trainer image is CUDA PyTorch with transformers, Node for the hub and the learner sources", () => {
    const text = read("images/trainer/Dockerfile");
    expect(text).to.match(/ARG TORCH_IMAGE=pytorch\/pytorch:[\d.]+-cuda[\d.]+-cudnn\d+-runtime/);
    expect(text).to.match(/transformers==\d/);
    expect(text).to.match(/prometheus-client==\d/); // the learner's /metrics
    expect(text).to.include("COPY --from=build /usr/local/bin/node");
    expect(text).to.include("COPY images/trainer/learner");
    // Stubs from the grpcio-tools that matches the pinned protobuf (Debian's protoc 3.x stubs are
    // refused by protobuf 5), generated in the final stage, not copied from the Node build stage.
    const pin = (p: string) => /"(?:[\w-]+)==([\d.]+)"/.exec(text.slice(text.indexOf(`"${p}==`)))?.[1];
    expect(pin("grpcio-tools")).to.equal(pin("grpcio"));
    expect(text).to.include("python3 -m grpc_tools.protoc");
    expect(text).not.to.include("/src/gen/python");
    // The resolved TrainingRun's schema, which the learner checks run.json against at start.
    expect(text).to.include("COPY --from=build /src/gen/schema ./gen/schema");
  });

  describe("the checks catch what they are for", () => {
    const ok = [
      "ARG BASE=node:20.20.2-bookworm-slim",
      "FROM ${BASE} AS build",
      "RUN npm ci",
      "FROM ${BASE}",
      'LABEL org.opencontainers.image.title="x" org.opencontainers.image.source="s" \\',
      '      org.opencontainers.image.licenses="Apache-2.0" org.opencontainers.image.version="1"',
      "COPY --from=build /src/dist ./dist",
      "COPY bin/l0.js ./bin/l0.js",
      "USER 65532:65532",
      'ENTRYPOINT ["node", "/app/bin/l0.js"]',
    ];
    const ctx = { root: ROOT, ignore: [".git", "**/node_modules", "**/.env"] };
    const cases: [string, (lines: string[]) => string[], RegExp][] = [
      [
        "an unpinned base",
        (l) => l.map((x) => x.replace("node:20.20.2-bookworm-slim", "node:latest")),
        /not pinned/,
      ],
      [
        "a base without a tag",
        (l) => l.map((x) => x.replace("node:20.20.2-bookworm-slim", "node")),
        /has no tag/,
      ],
      ["a single stage", (l) => l.filter((x) => !x.includes("build")), /multi-stage/],
      ["no USER", (l) => l.filter((x) => !x.startsWith("USER")), /no USER/],
      ["USER root", (l) => l.map((x) => (x.startsWith("USER") ? "USER root" : x)), /is root/],
      ["USER 0:0", (l) => l.map((x) => (x.startsWith("USER") ? "USER 0:0" : x)), /is root/],
      ["a RUN after USER", (l) => [...l, "RUN echo hi"], /keep USER last/],
      [
        "a token in ENV",
        (l) => [...l.slice(0, 4), "ENV HF_TOKEN=hf_abcdef", ...l.slice(4)],
        /HF_TOKEN looks like a secret/,
      ],
      [
        "a private key",
        (l) => [...l.slice(0, 4), "RUN echo '-----BEGIN RSA PRIVATE KEY-----'", ...l.slice(4)],
        /credential/,
      ],
      [
        "copying a .env file",
        (l) => [...l.slice(0, 4), "COPY .env /app/.env", ...l.slice(4)],
        /looks like a secret/,
      ],
      [
        "a COPY source that does not exist",
        (l) => [...l.slice(0, 4), "COPY nowhere/x.py ./x.py", ...l.slice(4)],
        /does not exist/,
      ],
      [
        "COPY --from an unknown stage",
        (l) => [...l.slice(0, 4), "COPY --from=nope /a /a", ...l.slice(4)],
        /no such earlier stage/,
      ],
      [
        "a missing OCI label",
        (l) => l.map((x) => x.replace("org.opencontainers.image.source", "x")),
        /org\.opencontainers\.image\.source/,
      ],
      [
        "a shell-form entrypoint",
        (l) => l.map((x) => (x.startsWith("ENTRYPOINT") ? "ENTRYPOINT node /app/bin/l0.js" : x)),
        /shell form/,
      ],
      [
        "apt-get install with recommends and lists left behind",
        (l) => [...l.slice(0, 4), "RUN apt-get update && apt-get install -y python3", ...l.slice(4)],
        /no-install-recommends/,
      ],
    ];
    it("a clean Dockerfile has no problems", () => {
      expect(dockerfileProblems(ok.join("\n"), ctx)).to.deep.equal([]);
    });
    for (const [name, edit, want] of cases) {
      it(name, () => {
        const problems = dockerfileProblems(edit(ok).join("\n"), ctx);
        expect(problems.join("\n")).to.match(want);
      });
    }
    it("a COPY source excluded by the .dockerignore", () => {
      const problems = dockerfileProblems(ok.join("\n"), { ...ctx, ignore: [...ctx.ignore, "bin"] });
      expect(problems.join("\n")).to.match(/bin\/l0\.js is excluded by the \.dockerignore/);
    });
    it("a .dockerignore that lets node_modules in", () => {
      expect(dockerfileProblems(ok.join("\n"), { ...ctx, ignore: [".git", "**/.env"] }).join("\n")).to.match(
        /does not exclude \*\*\/node_modules/,
      );
    });
  });

  it("parses continuations and comments as Docker does", () => {
    const ins = parseDockerfile("# c\nFROM a:1 AS b\nRUN x \\\n  # inner comment\n  && y\n");
    expect(ins).to.deep.equal([
      { cmd: "FROM", args: "a:1 AS b", line: 2 },
      { cmd: "RUN", args: "x && y", line: 3 },
    ]);
  });

  it("matches .dockerignore patterns like Docker", () => {
    const p = ["**/node_modules", "dist", "**/*.pem", "!keep.pem"];
    expect(isIgnored("node_modules", p)).to.equal(true);
    expect(isIgnored("images/worker/node_modules/x", p)).to.equal(true);
    expect(isIgnored("dist/cli/main.js", p)).to.equal(true);
    expect(isIgnored("lib/dist.ts", p)).to.equal(false);
    expect(isIgnored("a/b/c.pem", p)).to.equal(true);
    expect(isIgnored("keep.pem", p)).to.equal(false);
  });
});
