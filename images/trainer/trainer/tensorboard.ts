// TensorBoard curves of a run (spec.observability.tensorboard, docs/metrics.md): every step's and
// evaluation's scalars (record.ts SCALARS) appended to an event file under the checkpoint
// directory, one write per record. A failed write is logged (naming the file) and counted in
// l0_trainer_tensorboard_errors_total, and training goes on: curves are not worth a run.
import { join } from "node:path";
import { type Counter } from "prom-client";
import { type ResolvedTrainingRun } from "../../../gen/crds/index.js";
import { errorFields, type Logger } from "../../../lib/log.js";
import { EventFileWriter, type TfEvent } from "../../../lib/tfevents.js";
import { type HistoryRecord, scalarsOf } from "./record.js";

export const TENSORBOARD_DIR = "tensorboard";

/** Pure: where the run's event files go, or null when none are written. */
export function tensorboardDir(run: ResolvedTrainingRun, checkpointDir: string): string | null {
  if (!run.spec.observability.tensorboard.enabled || !checkpointDir) return null;
  return join(checkpointDir, TENSORBOARD_DIR);
}

export class TensorBoardLog {
  readonly #writer: EventFileWriter;
  readonly #logger: Logger;
  readonly #errors: Counter;
  /** Whether this process's SessionLog START is in the file. */
  #started = false;

  constructor(o: { dir: string; logger: Logger; errors: Counter; clock?: () => number; host?: string }) {
    this.#writer = new EventFileWriter(o.dir, { clock: o.clock, host: o.host });
    this.#logger = o.logger;
    this.#errors = o.errors;
  }

  get path(): string {
    return this.#writer.path;
  }

  /** Appends the record's scalars; never throws. */
  record(rec: HistoryRecord): void {
    const scalars = Object.fromEntries(scalarsOf(rec).map(({ spec, value }) => [spec.tag, value]));
    const events: TfEvent[] = [];
    // A restarted trainer repeats the steps after its checkpoint (or the whole run, without one):
    // a SessionLog START at its first record's step makes TensorBoard drop what an earlier attempt
    // wrote from that step on (its loader purges what it read at steps >= a START's step; PyTorch's
    // SummaryWriter(purge_step) relies on the same).
    const wallTime = rec.unixMs / 1000;
    if (!this.#started) events.push({ wallTime, step: rec.step, what: { sessionStart: true } });
    events.push({ wallTime, step: rec.step, what: { scalars } });
    try {
      this.#writer.append(events);
      this.#started = true;
    } catch (err) {
      this.#errors.inc();
      this.#logger.error("TensorBoard event file not written; training goes on", {
        path: this.#writer.path,
        step: rec.step,
        kind: rec.kind,
        ...errorFields(err),
      });
    }
  }

  close(): void {
    this.#writer.close();
  }
}
