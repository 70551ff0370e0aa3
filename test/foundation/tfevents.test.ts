// TensorBoard event files (lib/tfevents.ts): the masked CRC against published known answers, a
// record byte for byte as TensorFlow wrote it, and files read back by the test's own reader
// (tfevents-reader.ts: its own CRC32C, both CRCs checked per record, Events decoded by field).
import { crc32c } from "@aws-crypto/crc32c";
import { expect } from "chai";
import { existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isL0Error } from "../../lib/errors.js";
import {
  EventFileWriter,
  FILE_VERSION,
  encodeEvent,
  eventFileName,
  maskCrc,
  maskedCrc32c,
  tfRecord,
} from "../../lib/tfevents.js";
import { crc32cBitwise, maskedBitwise, readEventFile, readRecords } from "./tfevents-reader.js";

const T0 = 1_700_000_000_500; // ms
const clock = () => T0;
const tmp = () => mkdtempSync(join(tmpdir(), "l0-tfevents-"));

describe("TensorBoard event files: format", () => {
  it("CRC32C and its mask match published known answers", () => {
    const digits = Buffer.from("123456789");
    // The CRC-32C check value (RFC 3720 B.4 and every CRC catalogue); both implementations agree.
    expect(crc32c(digits)).to.equal(0xe3069283);
    expect(crc32cBitwise(digits)).to.equal(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).to.equal(0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
    // mask(x) = rotr(x, 15) + 0xa282ead8, worked by hand for the check value:
    // rotr(0xe3069283, 15) = 0x2507c60d; + 0xa282ead8 = 0xc78ab0e5 (mod 2^32).
    expect(maskCrc(0xe3069283)).to.equal(0xc78ab0e5);
    expect(maskedCrc32c(digits)).to.equal(0xc78ab0e5);
    // From a real TensorFlow event file, as TensorBoard's own reader tests it
    // (tensorboard/data/server/masked_crc.rs): Event(file_version="CRC test, one two").
    const real = Buffer.from("\x1a\x11CRC test, one two", "latin1");
    expect(maskedCrc32c(real)).to.equal(0x5794d08a);
    expect(maskedBitwise(real)).to.equal(0x5794d08a);
  });

  it("frames a file_version Event byte for byte as TensorFlow wrote it", () => {
    // The first record of an event file TensorFlow wrote, from TensorBoard's TFRecord reader tests
    // (tensorboard/data/server/tf_record.rs): length 24, its CRC, the Event, the Event's CRC.
    const data = Buffer.concat([
      Buffer.from([0x09, 0x00, 0x00, 0x80, 0x38, 0x99, 0xd6, 0xd7, 0x41, 0x1a, 0x0d]),
      Buffer.from("brain.Event:2"),
    ]);
    const record = Buffer.concat([
      Buffer.from([0x18, 0, 0, 0, 0, 0, 0, 0, 0xa3, 0x7f, 0x4b, 0x22]),
      data,
      Buffer.from([0x12, 0x4b, 0x36, 0xab]),
    ]);
    const wallTime = data.readDoubleLE(1);
    const event = encodeEvent({ wallTime, step: 0, what: { fileVersion: FILE_VERSION } });
    expect(Buffer.from(event).toString("hex")).to.equal(data.toString("hex"));
    expect(tfRecord(event).toString("hex")).to.equal(record.toString("hex"));
    expect(readRecords(record)).to.have.length(1);
  });

  it("the test reader rejects a flipped bit in either CRC's range", () => {
    const rec = tfRecord(encodeEvent({ wallTime: 1, step: 3, what: { scalars: { a: 1 } } }));
    for (const at of [2, 14]) {
      const bad = Buffer.from(rec);
      bad[at]! ^= 1;
      expect(() => readRecords(bad), `byte ${at}`).to.throw(/CRC/);
    }
  });

  it("names files as TensorBoard looks for them", () => {
    expect(eventFileName(1_700_000_000.9, "trainer-0")).to.equal("events.out.tfevents.1700000000.trainer-0");
    expect(eventFileName(5, "h")).to.equal("events.out.tfevents.0000000005.h");
  });
});

describe("TensorBoard event files: EventFileWriter", () => {
  it("starts the file with file_version, then appends each step's scalars with step and wall time", () => {
    const dir = join(tmp(), "tb"); // made on the first append
    const w = new EventFileWriter(dir, { clock, host: "trainer-0" });
    expect(w.path).to.equal(join(dir, "events.out.tfevents.1700000000.trainer-0"));
    w.append([{ wallTime: 1_700_000_001, step: 0, what: { sessionStart: true } }]);
    w.append([
      { wallTime: 1_700_000_002.25, step: 1, what: { scalars: { "train/loss": 0.1, "eval/x": -3 } } },
    ]);
    w.append([{ wallTime: 1_700_000_003, step: 2, what: { scalars: { "train/loss": 1e6 } } }]);
    w.close();
    expect(readEventFile(w.path)).to.deep.equal([
      { wallTime: T0 / 1000, step: 0, fileVersion: FILE_VERSION },
      { wallTime: 1_700_000_001, step: 0, sessionStatus: 1 }, // SessionLog START
      { wallTime: 1_700_000_002.25, step: 1, scalars: { "train/loss": Math.fround(0.1), "eval/x": -3 } },
      { wallTime: 1_700_000_003, step: 2, scalars: { "train/loss": 1e6 } },
    ]);
  });

  it("appends to an existing file of the same name without a second file_version", () => {
    const dir = tmp();
    const first = new EventFileWriter(dir, { clock, host: "h" });
    first.append([{ wallTime: 1, step: 1, what: { scalars: { a: 1 } } }]);
    first.close();
    const again = new EventFileWriter(dir, { clock, host: "h" });
    again.append([{ wallTime: 2, step: 2, what: { scalars: { a: 2 } } }]);
    const events = readEventFile(again.path);
    expect(events.map((e) => e.fileVersion ?? e.step)).to.deep.equal([FILE_VERSION, 1, 2]);
  });

  it("an unusable directory is an error naming the file; a later append to a usable one works", () => {
    const root = tmp();
    writeFileSync(join(root, "not-a-dir"), "x");
    const w = new EventFileWriter(join(root, "not-a-dir", "tb"), { clock, host: "h" });
    let caught: unknown;
    try {
      w.append([{ wallTime: 1, step: 1, what: { scalars: { a: 1 } } }]);
    } catch (err) {
      caught = err;
    }
    expect(isL0Error(caught, "Unavailable"), String(caught)).to.equal(true);
    expect((caught as Error).message)
      .to.include(w.path)
      .and.to.include("ENOTDIR");
    const ok = new EventFileWriter(join(root, "tb"), { clock, host: "h" });
    ok.append([{ wallTime: 1, step: 1, what: { scalars: { a: 1 } } }]);
    expect(readdirSync(join(root, "tb"))).to.deep.equal([eventFileName(T0 / 1000, "h")]);
    expect(readRecords(readFileSync(ok.path))).to.have.length(2);
  });

  it("a write that fails (a full volume) is an error naming the file", function () {
    if (!existsSync("/dev/full")) this.skip();
    const dir = tmp();
    const w = new EventFileWriter(dir, { clock, host: "h" });
    symlinkSync("/dev/full", w.path); // every write: ENOSPC
    expect(() => w.append([{ wallTime: 1, step: 1, what: { scalars: { a: 1 } } }]))
      .to.throw(w.path)
      .with.property("message")
      .that.includes("ENOSPC");
  });
});
