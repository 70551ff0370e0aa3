// CEL rules of a structural schema, evaluated as the API server evaluates them (lib/cel.ts).
import { expect } from "chai";
import { type CelRule, celValue, celViolations, ruleCompileError, type SchemaNode } from "../../lib/cel.js";

const rules = (...r: CelRule[]) => ({ "x-kubernetes-validations": r });
const range: SchemaNode = {
  type: "object",
  ...rules({ rule: "self.min <= self.max", message: "min must be <= max" }),
  properties: { min: { type: "integer" }, max: { type: "integer" } },
};

describe("CEL validation rules", () => {
  const table: [string, SchemaNode, unknown, unknown, string[]][] = [
    ["a rule that holds", range, { min: 1, max: 2 }, undefined, []],
    ["a rule that fails, with its message", range, { min: 3, max: 2 }, undefined, ["min must be <= max"]],
    [
      "a missing key is an evaluation error, as on the API server",
      range,
      {},
      undefined,
      ["no such key: min evaluating rule: self.min <= self.max"],
    ],
    [
      "has() guards a missing key",
      { ...range, ...rules({ rule: "!has(self.min) || !has(self.max) || self.min <= self.max" }) },
      {},
      undefined,
      [],
    ],
    [
      "integers are ints: integer division",
      { type: "object", ...rules({ rule: "self.n / 2 == 1" }), properties: { n: { type: "integer" } } },
      { n: 3 },
      undefined,
      [],
    ],
    [
      "numbers are doubles",
      { type: "object", ...rules({ rule: "self.x / 2.0 == 1.5" }), properties: { x: { type: "number" } } },
      { x: 3 },
      undefined,
      [],
    ],
    [
      "a transition rule is skipped on create",
      { type: "string", ...rules({ rule: "self == oldSelf", message: "immutable" }) },
      "b",
      undefined,
      [],
    ],
    [
      "a transition rule is evaluated on update",
      { type: "string", ...rules({ rule: "self == oldSelf", message: "immutable" }) },
      "b",
      "a",
      ["immutable"],
    ],
    [
      "messageExpression wins over message",
      {
        type: "integer",
        ...rules({ rule: "self < 5", message: "m", messageExpression: "'got ' + string(self)" }),
      },
      7,
      undefined,
      ["got 7"],
    ],
    [
      "strings extension functions",
      { type: "string", ...rules({ rule: "self.lowerAscii() == self", message: "lower case" }) },
      "Abc",
      undefined,
      ["lower case"],
    ],
  ];
  for (const [what, schema, value, old, want] of table)
    it(what, () => {
      expect(celViolations(schema, value, old).map((v) => v.detail)).to.deep.equal(want);
    });

  it("reports each failure at its node's path, through objects, maps and lists", () => {
    const schema: SchemaNode = {
      type: "object",
      properties: {
        spec: {
          type: "object",
          properties: {
            list: { type: "array", items: range },
            byName: { type: "object", additionalProperties: range },
          },
        },
      },
    };
    const bad = { min: 9, max: 1 };
    const v = celViolations(schema, { spec: { list: [{ min: 0, max: 1 }, bad], byName: { a: bad } } });
    expect(v.map((x) => x.field)).to.deep.equal(["spec.list[1]", "spec.byName[a]"]);
    expect(v[0]!.message).to.equal('Invalid value: "object": min must be <= max');
  });

  it("correlates oldSelf through object fields", () => {
    const schema = {
      type: "object",
      properties: {
        a: { type: "object", properties: { b: { type: "integer", ...rules({ rule: "self >= oldSelf" }) } } },
      },
    };
    expect(celViolations(schema, { a: { b: 1 } }, { a: { b: 2 } })).to.have.length(1);
    expect(celViolations(schema, { a: { b: 3 } }, { a: { b: 2 } })).to.have.length(0);
    expect(celViolations(schema, { a: { b: 1 } }, { a: {} })).to.have.length(0);
  });

  it("ratchets: an update may keep a value that breaks a rule, not change it into one", () => {
    expect(celViolations(range, { min: 3, max: 2 }, { min: 3, max: 2 })).to.have.length(0);
    expect(celViolations(range, { min: 4, max: 2 }, { min: 3, max: 2 })).to.have.length(1);
    const parent: SchemaNode = { type: "object", properties: { r: range, x: { type: "integer" } } };
    expect(
      celViolations(parent, { r: { min: 3, max: 2 }, x: 2 }, { r: { min: 3, max: 2 }, x: 1 }),
    ).to.have.length(0);
  });

  it("types values by the schema", () => {
    expect(celValue({ type: "integer" }, 3)).to.equal(3n);
    expect(celValue({ type: "number" }, 3)).to.equal(3);
    expect(celValue({ type: "object", properties: { n: { type: "integer" } } }, { n: 1 })).to.deep.equal(
      new Map([["n", 1n]]),
    );
  });

  it("names a rule that does not compile", () => {
    expect(ruleCompileError("self.a <=")).to.be.a("string");
    expect(ruleCompileError("self.a <= 1")).to.equal(undefined);
  });
});
