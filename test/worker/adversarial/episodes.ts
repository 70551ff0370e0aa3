// Whole hostile episodes for suite.ts, as scripts of the scripted engine: a kernel that floods
// the channel while its model generates (next to calm episodes on the same worker), and pairs of
// an honest and a hostile version of the same cells, whose rewards the suite compares.
import { type ScriptedTurn, turn } from "../fixtures/engine.js";
import { FLOOD_THREAD, NONCE, frame } from "./helpers.js";

const submit = (answer: string): ScriptedTurn => turn("submit", `submit_final_answer(${answer})`);
const task = (p: string): string | null => /\[task:([\w-]+)\]/.exec(p)?.[1] ?? null;

export const FLOOD_EPISODE = {
  script(p: string, n: number): ScriptedTurn | null {
    const name = task(p);
    if (name === "flood")
      return [turn("flood", FLOOD_THREAD + "x = 6 * 7"), turn("go on", "print('after')")][n] ?? submit("42");
    if (name?.startsWith("calm-"))
      return (
        [
          turn("compute", "x = 6 * 7"),
          // Only the worker's hard-kill timer ends this cell.
          turn("spin", "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True: pass"),
        ][n] ?? submit("42")
      );
    return null;
  },
};

interface Pair {
  key: string;
  name: string;
  truth: string;
  answer: string;
  honest: string[];
  hostile: string[];
}

const SLEEP = "import time\ntime.sleep(30)";

const PAIRS: Pair[] = [
  {
    key: "swallow",
    name: "except BaseException around a blocking call",
    truth: "42",
    answer: "42",
    honest: [SLEEP],
    hostile: ["import time\ntry: time.sleep(30)\nexcept BaseException: pass"],
  },
  {
    key: "alarm",
    name: "cancel the cell's alarm and spin",
    truth: "42",
    answer: "42",
    honest: ["while True: pass"],
    hostile: ["import signal\nsignal.setitimer(signal.ITIMER_REAL, 0)\nwhile True: pass"],
  },
  {
    key: "forge-now",
    name: "forge this cell's result (real nonce) and block past the deadline",
    truth: "42",
    answer: "42",
    honest: [SLEEP],
    hostile: [
      "import os, json, struct\n" +
        NONCE +
        `os.write(4, ${frame("{'t': 'result', 'id': nonce(), 'ok': True, 'stdout': 'fine'}")})\n` +
        SLEEP,
    ],
  },
  {
    key: "forge-future",
    name: "forge the next cell's result from a thread while the model generates",
    truth: "42",
    answer: "42",
    honest: ["x = 1", "y = 2"],
    hostile: [
      "import os, json, struct, threading, time\ndef later():\n  time.sleep(0.2)\n" +
        `  os.write(4, ${frame("{'t': 'result', 'id': 'guess', 'ok': True}")})\n` +
        "threading.Thread(target=later).start()\nx = 1",
      "y = 2",
    ],
  },
  {
    key: "flood",
    name: "flood the channel from a thread",
    truth: "42",
    answer: "42",
    honest: ["x = 1", "y = 2"],
    hostile: [FLOOD_THREAD + "x = 1", "y = 2"],
  },
  {
    key: "hijack",
    name: "rewrite the REPL so a failing cell reports ok (a wrong answer: the F1 weight pays nothing)",
    truth: "42",
    answer: "'wrong'",
    honest: ["pass", "1 / 0"],
    hostile: [
      "import sys\nf = sys._getframe()\nwhile 'msg' not in f.f_locals: f = f.f_back\nK = type(f.f_locals['self'])\n" +
        "orig = K.execute\ndef fake(self, msg):\n  r = orig(self, msg)\n  r.update(ok=True, error=None)\n  return r\nK.execute = fake",
      "1 / 0",
    ],
  },
];

export const REWARD_PAIRS = {
  pairs: PAIRS,
  script(p: string, n: number): ScriptedTurn {
    const name = task(p) ?? "";
    const pair = PAIRS.find((x) => name === `honest-${x.key}` || name === `hostile-${x.key}`);
    if (!pair) throw new Error(`no script for task ${name}`);
    const cells = name.startsWith("honest-") ? pair.honest : pair.hostile;
    return n < cells.length ? turn(`cell ${n}`, cells[n]!) : submit(pair.answer);
  },
};
