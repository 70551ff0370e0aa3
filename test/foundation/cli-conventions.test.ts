// Conventions every `l0` program shares: one exit-code table (usage errors exit 2 like a bad
// configuration; help exits 0) and shell completion built from the command tree itself.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { bashScript, commandWords, zshScript } from "../../cli/completion.js";

const L0 = join(resolve(import.meta.dirname, "..", ".."), "bin", "l0.js");
const l0 = (...args: string[]) => spawnSync(process.execPath, [L0, ...args], { encoding: "utf8" });

describe("l0 conventions", function () {
  this.timeout(60_000);

  const codes: [string, string[], number][] = [
    ["an unknown command is a usage error", ["nope"], 2],
    ["a missing required flag is a usage error", ["local"], 2],
    ["an unknown flag is a usage error", ["local", "-f", "x.yaml", "--no-such-flag"], 2],
    ["a bad flag value is a configuration error", ["local", "-f", "x.yaml", "--workers", "-1"], 2],
    ["help exits 0", ["local", "--help"], 0],
    ["an unknown shell for completion is a usage error", ["completion", "fish"], 2],
  ];
  for (const [what, args, want] of codes)
    it(`exit code: ${what} (${want})`, () => expect(l0(...args).status).to.equal(want));

  it("completes commands and each command's long flags, from the tree as built", () => {
    const program = new Command("l0");
    program.command("local").requiredOption("-f, --file <path>").option("--fresh");
    program.command("hub").option("--port <n>");
    const words = commandWords(program);
    expect(words).to.deep.equal([
      { name: "local", options: ["--file", "--fresh", "--help"] },
      { name: "hub", options: ["--port", "--help"] },
    ]);
    const complete = (script: string, line: string[]) =>
      spawnSync(
        "bash",
        [
          "-c",
          `${script}\nCOMP_WORDS=(${line.join(" ")}); COMP_CWORD=${line.length - 1}; _l0; echo "\${COMPREPLY[@]}"`,
        ],
        { encoding: "utf8" },
      ).stdout.trim();
    expect(complete(bashScript(words), ["l0", "lo"])).to.equal("local");
    expect(complete(bashScript(words), ["l0", "local", "--fr"])).to.equal("--fresh");
    expect(zshScript(words)).to.contain("bashcompinit").and.to.contain("complete -F _l0 l0");
    const real = l0("completion", "bash");
    expect(real.status).to.equal(0);
    expect(real.stdout).to.contain('local) opts="--file --run-dir');
  });
});
