// TensorBoard event files ("tfevents"): TFRecord-framed `Event` protobufs, appended to
// `events.out.tfevents.<unix seconds>.<hostname>`, the first event naming the file version.
// Only what scalar curves need: `file_version`, `summary.value{tag, simple_value}` and the
// SessionLog START that tells TensorBoard a run resumed at a step. Formats, from the sources:
// - Event, SessionLog: tensorflow/tensorboard tensorboard/compat/proto/event.proto (wall_time=1
//   double, step=2 int64, oneof what {file_version=3, summary=5, session_log=7}; SessionLog
//   status=1, START=1);
// - Summary: tensorboard/compat/proto/summary.proto (value=1 repeated; Value tag=1,
//   simple_value=2 float);
// - TFRecord: tensorflow/core/lib/io/record_writer.cc, as tensorboard/summary/writer/record_writer.py
//   writes it: uint64 length, masked CRC32C of those 8 bytes, data, masked CRC32C of the data,
//   all little-endian; mask as in tensorboard/data/server/masked_crc.rs.
// No buffering: each append is one write to the file (flushed to the OS), so a crash loses at
// most the append in flight.
import { crc32c } from "@aws-crypto/crc32c";
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import protobuf from "protobufjs/minimal.js";
import { L0Error } from "./errors.js";

export const FILE_VERSION = "brain.Event:2";
const MASK_DELTA = 0xa282ead8;

/** The TFRecord checksum permutation (as LevelDB's): rotate right by 15, add a constant. */
export function maskCrc(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + MASK_DELTA) >>> 0;
}

export function maskedCrc32c(data: Uint8Array): number {
  return maskCrc(crc32c(data));
}

/** One TFRecord: length, its masked CRC, the data, the data's masked CRC. */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** The Event subset we write; `what` is the proto's oneof. */
export interface TfEvent {
  /** Seconds since the epoch. */
  wallTime: number;
  step: number;
  what:
    | { fileVersion: string }
    | { scalars: Readonly<Record<string, number>> }
    /** SessionLog START: TensorBoard drops what it read at or after this step (a resumed run). */
    | { sessionStart: true };
}

const tag = (field: number, wireType: number) => ((field << 3) | wireType) >>> 0;
const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const FIXED32 = 5;

/** The Event's protobuf encoding; zero-valued scalars are omitted as proto3 does. */
export function encodeEvent(e: TfEvent): Uint8Array {
  const w = protobuf.Writer.create();
  if (e.wallTime !== 0) w.uint32(tag(1, FIXED64)).double(e.wallTime);
  if (e.step !== 0) w.uint32(tag(2, VARINT)).int64(e.step);
  const what = e.what;
  if ("fileVersion" in what) {
    w.uint32(tag(3, BYTES)).string(what.fileVersion);
  } else if ("scalars" in what) {
    w.uint32(tag(5, BYTES)).fork();
    for (const [name, value] of Object.entries(what.scalars)) {
      w.uint32(tag(1, BYTES)).fork();
      w.uint32(tag(1, BYTES)).string(name);
      w.uint32(tag(2, FIXED32)).float(value);
      w.ldelim();
    }
    w.ldelim();
  } else {
    w.uint32(tag(7, BYTES)).fork().uint32(tag(1, VARINT)).int32(1).ldelim();
  }
  return w.finish();
}

/** The name TensorBoard looks for (`tfevents` in it), as TensorFlow's EventsWriter forms it. */
export function eventFileName(unixSeconds: number, host: string): string {
  return `events.out.tfevents.${String(Math.floor(unixSeconds)).padStart(10, "0")}.${host}`;
}

/**
 * Appends events to one event file in `dir`, created (with the directory) on the first append,
 * which starts it with the file_version event. An append that fails throws an L0Error naming the
 * file and is undone (the file is cut back to its last whole record), so a later append can
 * succeed and readers never meet a torn record.
 */
export class EventFileWriter {
  readonly dir: string;
  readonly path: string;
  readonly #clock: () => number;
  #fd: number | undefined;
  #size = 0;

  /** `clock` gives milliseconds since the epoch (the file name and the file_version event). */
  constructor(dir: string, opts: { clock?: () => number; host?: string } = {}) {
    this.dir = dir;
    this.#clock = opts.clock ?? Date.now;
    this.path = join(dir, eventFileName(this.#clock() / 1000, opts.host ?? hostname()));
  }

  append(events: readonly TfEvent[]): void {
    try {
      this.#open();
      const head: TfEvent[] =
        this.#size === 0
          ? [{ wallTime: this.#clock() / 1000, step: 0, what: { fileVersion: FILE_VERSION } }]
          : [];
      const records = [...head, ...events].map((e) => tfRecord(encodeEvent(e)));
      this.#write(Buffer.concat(records));
    } catch (err) {
      throw new L0Error("Unavailable", `TensorBoard event file ${this.path}: ${(err as Error).message}`, {
        reason: "EventFileWrite",
      });
    }
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  /** Opens the file (and makes the directory) on first use; appends to a file of the same name. */
  #open(): void {
    if (this.#fd !== undefined) return;
    mkdirSync(this.dir, { recursive: true });
    const fd = openSync(this.path, "a");
    this.#fd = fd;
    this.#size = fstatSync(fd).size;
  }

  #write(buf: Buffer): void {
    const fd = this.#fd!;
    try {
      for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off);
      fdatasyncSync(fd);
      this.#size += buf.length;
    } catch (err) {
      try {
        ftruncateSync(fd, this.#size);
      } catch {
        // the write error is the one to report
      }
      throw err;
    }
  }
}
