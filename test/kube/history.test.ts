// Property: for any sequence of writes, the state at any retained resourceVersion plus the
// watch events after it rebuilds the final state (what informers rely on), events come in
// strictly rising resourceVersion order, the state at N can be rebuilt (Exact lists), and
// anything older than the window is 410.
import { expect } from "chai";
import fc from "fast-check";
import { History } from "./history.js";
import { ResourceTable } from "./resources.js";
import { createCrValidator } from "./schema.js";
import { Store } from "./store.js";
import { type Obj } from "./types.js";

const op = fc.oneof(
  fc.record({
    kind: fc.constant("put" as const),
    name: fc.constantFrom("a", "b", "c", "d"),
    v: fc.string({ maxLength: 3 }),
    role: fc.constantFrom("x", "y"),
  }),
  fc.record({ kind: fc.constant("del" as const), name: fc.constantFrom("a", "b", "c", "d") }),
);

describe("kube server: watch history (property)", () => {
  it("state at N + events after N = final state, in rising order; older than the window is 410", () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 40 }),
        fc.integer({ min: 1, max: 30 }),
        fc.constantFrom("", "role=x"),
        (ops, window, selector) => {
          const table = new ResourceTable([]);
          const history = new History(window);
          const store = new Store(table, createCrValidator([]), history, () => new Date(0));
          const nsT = table.byPath("", "v1", "namespaces")!;
          const cmT = table.byPath("", "v1", "configmaps")!;
          store.create(nsT, "", { metadata: { name: "default" } });
          const snap = (): Map<string, Obj> =>
            new Map(store.list(cmT, "default").map((o) => [o.metadata.name, structuredClone(o)]));
          const states = new Map<number, Map<string, Obj>>([[store.resourceVersion, snap()]]);
          for (const o of ops) {
            const exists = store.peek(cmT, "default", o.name);
            if (o.kind === "put") {
              const body = { metadata: { name: o.name, labels: { role: o.role } }, data: { v: o.v } };
              if (exists) store.update(cmT, "default", o.name, body);
              else store.create(cmT, "default", body);
            } else if (exists) store.delete(cmT, "default", o.name);
            states.set(store.resourceVersion, snap());
          }
          const filter = {
            type: cmT,
            namespace: "default",
            labels: selector ? [{ key: "role", op: "=" as const, values: ["x"] as [string] }] : [],
            fields: [],
          };
          const keep = (m: Map<string, Obj>): Map<string, Obj> =>
            new Map([...m].filter(([, o]) => !selector || o.metadata.labels?.role === "x"));
          const final = keep(snap());
          for (const [rv, state] of states) {
            if (rv < history.compacted) {
              expect(() => history.since(rv, filter))
                .to.throw()
                .with.property("code", 410);
              continue;
            }
            // resourceVersionMatch=Exact: the state at rv, rebuilt by undoing later events.
            const exact = history.stateAt(rv, "/configmaps", store.list(cmT));
            expect(exact.map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`)).to.deep.equal(
              [...state.values()].map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`),
            );
            const events = history.since(rv, filter);
            const rvs = events.map((e) => Number(e.object.metadata.resourceVersion));
            expect(rvs).to.deep.equal([...rvs].sort((a, b) => a - b));
            expect(new Set(rvs).size).to.equal(rvs.length);
            const rebuilt = keep(state);
            for (const e of events) {
              // An informer's view: ADDED for something new, MODIFIED/DELETED only for what it has.
              expect(rebuilt.has(e.object.metadata.name), `${e.type} ${e.object.metadata.name}`).to.equal(
                e.type !== "ADDED",
              );
              if (e.type === "DELETED") rebuilt.delete(e.object.metadata.name);
              else rebuilt.set(e.object.metadata.name, e.object);
            }
            expect([...rebuilt.keys()].sort()).to.deep.equal([...final.keys()].sort());
            for (const [k, o] of final)
              expect(rebuilt.get(k)!.metadata.resourceVersion).to.equal(o.metadata.resourceVersion);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
