// `l0 completion bash|zsh`: a shell completion script for the command tree as built (commands and
// their long options), so it never drifts from the flags. Pure script builders, table-tested.
import { type Command } from "commander";

export interface CommandWords {
  name: string;
  options: string[];
}

/** Pure: each subcommand with its long options (`--help` included). */
export function commandWords(program: Command): CommandWords[] {
  return program.commands.map((c) => ({
    name: c.name(),
    options: [...c.options.map((o) => o.long).filter((l): l is string => !!l), "--help"],
  }));
}

/** Pure: a bash completion script (`source <(l0 completion bash)`). */
export function bashScript(words: CommandWords[]): string {
  const cases = words.map((w) => `    ${w.name}) opts="${w.options.join(" ")}" ;;`).join("\n");
  return `# l0 bash completion: source <(l0 completion bash)
_l0() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd=\${COMP_WORDS[1]} opts
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${words.map((w) => w.name).join(" ")} --help --version" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases}
    *) opts="" ;;
  esac
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  [ \${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _l0 l0
`;
}

/** Pure: a zsh completion script (`source <(l0 completion zsh)`), on bash's through bashcompinit. */
export function zshScript(words: CommandWords[]): string {
  return `# l0 zsh completion: source <(l0 completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashScript(words).split("\n").slice(1).join("\n")}`;
}

export function register(program: Command): void {
  program
    .command("completion")
    .description(
      "Print a shell completion script: source <(l0 completion bash) or source <(l0 completion zsh)",
    )
    .argument("<shell>", "bash or zsh")
    .action((shell: string, _opts: unknown, cmd: Command) => {
      const words = commandWords(program).filter((w) => w.name !== "completion");
      if (shell !== "bash" && shell !== "zsh")
        cmd.error(`l0 completion: unknown shell "${shell}" (bash or zsh)`);
      process.stdout.write(shell === "bash" ? bashScript(words) : zshScript(words));
    });
}
