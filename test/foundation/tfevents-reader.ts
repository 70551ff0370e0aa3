// A TensorBoard event-file reader for tests, written apart from lib/tfevents.ts: its own bitwise
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78, as RFC 3720 B.4 defines it), the TFRecord
// framing checked record by record (both CRCs), and the Event fields decoded from the protobuf
// wire format by field number (event.proto / summary.proto of tensorflow/tensorboard).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import protobuf from "protobufjs/minimal.js";

/** CRC32C one bit at a time: slow, obviously the textbook algorithm, independent of the writer's. */
export function crc32cBitwise(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

export function maskedBitwise(data: Uint8Array): number {
  const crc = crc32cBitwise(data);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/**
 * The records' payloads; throws naming the record and offset on a bad CRC, or on a torn record
 * unless `tornTail` (a file being written, or cut by a crash: TensorBoard stops there and waits).
 */
export function readRecords(buf: Buffer, opts: { tornTail?: boolean } = {}): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    const n = out.length;
    const torn = (what: string) => {
      if (!opts.tornTail) throw new Error(`record ${n} at ${off}: torn ${what}`);
    };
    if (off + 12 > buf.length) {
      torn("header");
      break;
    }
    const lenBytes = buf.subarray(off, off + 8);
    if (buf.readUInt32LE(off + 8) !== maskedBitwise(lenBytes))
      throw new Error(`record ${n} at ${off}: length CRC`);
    const len = Number(lenBytes.readBigUInt64LE(0));
    const data = buf.subarray(off + 12, off + 12 + len);
    if (data.length !== len || off + 16 + len > buf.length)
      throw new Error(`record ${n} at ${off}: torn data`);
    if (buf.readUInt32LE(off + 12 + len) !== maskedBitwise(data))
      throw new Error(`record ${n} at ${off}: data CRC`);
    out.push(data);
    off += 16 + len;
  }
  return out;
}

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars?: Record<string, number>;
  sessionStatus?: number;
}

function decodeSummary(bytes: Uint8Array): Record<string, number> {
  const r = protobuf.Reader.create(bytes);
  const out: Record<string, number> = {};
  while (r.pos < r.len) {
    const t = r.uint32();
    if (t >>> 3 !== 1) throw new Error(`Summary: unexpected field ${t >>> 3}`);
    const v = protobuf.Reader.create(r.bytes());
    let tag = "";
    let value = NaN;
    while (v.pos < v.len) {
      const vt = v.uint32();
      if (vt === ((1 << 3) | 2)) tag = v.string();
      else if (vt === ((2 << 3) | 5)) value = v.float();
      else throw new Error(`Summary.Value: unexpected key ${vt}`);
    }
    out[tag] = value;
  }
  return out;
}

export function decodeEvent(bytes: Uint8Array): DecodedEvent {
  const r = protobuf.Reader.create(bytes);
  const e: DecodedEvent = { wallTime: 0, step: 0 };
  while (r.pos < r.len) {
    const t = r.uint32();
    switch (t) {
      case (1 << 3) | 1:
        e.wallTime = r.double();
        break;
      case (2 << 3) | 0:
        e.step = Number(String(r.int64())); // a number, or a Long where the long package is loaded
        break;
      case (3 << 3) | 2:
        e.fileVersion = r.string();
        break;
      case (5 << 3) | 2:
        e.scalars = decodeSummary(r.bytes());
        break;
      case (7 << 3) | 2: {
        const s = protobuf.Reader.create(r.bytes());
        if (s.uint32() !== ((1 << 3) | 0)) throw new Error("SessionLog: expected status");
        e.sessionStatus = s.int32();
        break;
      }
      default:
        throw new Error(`Event: unexpected key ${t}`);
    }
  }
  return e;
}

export function readEventFile(path: string, opts: { tornTail?: boolean } = {}): DecodedEvent[] {
  return readRecords(readFileSync(path), opts).map(decodeEvent);
}

/**
 * The curves TensorBoard shows for a directory of event files, by tag and step: files in name
 * order, a SessionLog START at step s dropping every point read so far at steps >= s (TensorBoard's
 * event_accumulator purge for file_version >= 2, `_CheckForRestartAndMaybePurge`). A tag with two
 * points at one step left after that is an error: the curve would fold back.
 */
export function tensorboardView(dir: string): Map<string, Map<number, number>> {
  const view = new Map<string, Map<number, number>>();
  for (const name of readdirSync(dir)
    .filter((f) => f.includes("tfevents"))
    .sort()) {
    for (const e of readEventFile(join(dir, name), { tornTail: true })) {
      if (e.sessionStatus === 1)
        for (const points of view.values())
          for (const step of [...points.keys()]) if (step >= e.step) points.delete(step);
      for (const [tag, value] of Object.entries(e.scalars ?? {})) {
        if (!view.has(tag)) view.set(tag, new Map());
        if (view.get(tag)!.has(e.step)) throw new Error(`${name}: ${tag} has step ${e.step} twice`);
        view.get(tag)!.set(e.step, value);
      }
    }
  }
  return view;
}
