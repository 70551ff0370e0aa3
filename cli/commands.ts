// Subcommands of `l0`. Each component exports `register(program)` from its own cli.ts and
// adds one line here; the component owns its flags, config and main.
import { type Command } from "commander";
import { register as hub } from "../images/trainer/hub/cli.js";
import { register as learner } from "../images/trainer/learner/cli.js";
import { register as weights } from "../images/trainer/weights/cli.js";
import { register as sidecar } from "../images/inference/cli.js";
import { register as operator } from "../operator/cli.js";
import { register as render } from "../operator/render-cli.js";
import { register as worker } from "../images/worker/cli.js";
import { register as trainer } from "../images/trainer/trainer/cli.js";
import { register as local } from "../local/cli.js";
import { register as evaluate } from "../eval/cli.js";
import { register as data } from "../eval/data/cli.js";
import { register as completion } from "./completion.js";

export type Register = (program: Command) => void;

export const COMMANDS: Register[] = [
  hub,
  learner,
  weights,
  sidecar,
  operator,
  render,
  worker,
  trainer,
  local,
  evaluate,
  data,
  completion,
];
