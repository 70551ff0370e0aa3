// The training loop's Prometheus figures (docs/metrics.md): gauges of the last step's and the last
// held-out evaluation's scalars (record.ts SCALARS, the list TensorBoard also draws from; the
// judge's only when the run has a judge), checkpoints and failed TensorBoard writes, on the
// trainer process's injected registry.
import { Counter, Gauge, type Registry } from "prom-client";
import { type HistoryRecord, SCALARS, scalarsOf } from "./record.js";

export class TrainerMetrics {
  /** By gauge name (e.g. `l0_learner_loss`). */
  readonly gauges: ReadonlyMap<string, Gauge>;
  readonly checkpoints: Counter<"result">;
  readonly tensorboardErrors: Counter;

  constructor(registry: Registry) {
    const gauges = new Map<string, Gauge>();
    for (const { gauge } of SCALARS) {
      if (!gauge || gauges.has(gauge.name)) continue;
      const labelNames = Object.keys(gauge.labels ?? {});
      gauges.set(
        gauge.name,
        new Gauge({ name: gauge.name, help: gauge.help, labelNames, registers: [registry] }),
      );
    }
    this.gauges = gauges;
    this.checkpoints = new Counter({
      name: "l0_trainer_checkpoints_total",
      help: "Checkpoints written by the training loop.",
      labelNames: ["result"],
      registers: [registry],
    });
    this.tensorboardErrors = new Counter({
      name: "l0_trainer_tensorboard_errors_total",
      help: "TensorBoard event-file appends that failed (the step is missing from the curves; training went on).",
      registers: [registry],
    });
  }

  /** Sets the gauge of every scalar the record carries. */
  observe(rec: HistoryRecord): void {
    for (const { spec, value } of scalarsOf(rec))
      if (spec.gauge) this.gauges.get(spec.gauge.name)!.set(spec.gauge.labels ?? {}, value);
  }
}
