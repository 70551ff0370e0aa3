// The hot-path containers against plain arrays: the deque keeps FIFO order across its
// compactions, the heap pops keys in ascending order.
import { expect } from "chai";
import fc from "fast-check";
import { Deque, MinHeap } from "../../images/trainer/hub/queue.js";

describe("hub queues", () => {
  it("Deque behaves like an array used as a FIFO, across compactions", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer(), fc.constant(null)), { maxLength: 5000 }), (ops) => {
        const d = new Deque<number>();
        const model: number[] = [];
        for (const op of ops) {
          if (op === null) expect(d.shift()).to.equal(model.shift());
          else {
            d.push(op);
            model.push(op);
          }
          expect(d.length).to.equal(model.length);
          expect(d.peek()).to.equal(model[0]);
        }
        expect([...d]).to.deep.equal(model);
      }),
      { numRuns: 50 },
    );
  });

  it("MinHeap pops in ascending key order", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1000, max: 1000 })), (keys) => {
        const h = new MinHeap<number>();
        keys.forEach((k) => h.push(k, k));
        const out: number[] = [];
        while (h.length > 0) out.push(h.pop()!);
        expect(out).to.deep.equal([...keys].sort((a, b) => a - b));
        expect(h.pop()).to.equal(undefined);
      }),
    );
  });
});
