// lib/quantity.ts against the canonical forms apimachinery's resource.Quantity produces
// (quantity_test.go's table, reduced to the shapes our objects carry).
import { expect } from "chai";
import fc from "fast-check";
import {
  QUANTITY_FORMAT_ERROR,
  canonicalQuantity,
  compareQuantities,
  parseQuantity,
  sameQuantity,
} from "../../lib/quantity.js";

describe("quantity", () => {
  const canonical: [string | number, string][] = [
    ["0", "0"],
    ["0Mi", "0"],
    ["1000m", "1"],
    ["1500m", "1500m"],
    ["1.5", "1500m"],
    ["0.5", "500m"],
    [0.5, "500m"],
    [2, "2"],
    ["100", "100"],
    ["1000", "1k"],
    ["2000000", "2M"],
    ["1e3", "1e3"],
    ["1E3", "1e3"],
    ["2048Mi", "2Gi"],
    ["1024Mi", "1Gi"],
    ["1536Mi", "1536Mi"],
    ["1.5Gi", "1536Mi"],
    ["0.5Ki", "512"],
    ["1Ki", "1Ki"],
    ["1023Ki", "1023Ki"],
    ["1025", "1025"],
    ["200Gi", "200Gi"],
    ["1G", "1G"],
    ["1000M", "1G"],
    ["0.1n", "1n"],
    ["100u", "100u"],
    ["-1500m", "-1500m"],
    ["+1", "1"],
    ["01", "1"],
    ["16", "16"],
    ["9216Mi", "9Gi"],
  ];
  for (const [input, want] of canonical)
    it(`${JSON.stringify(input)} is stored as ${want}`, () => {
      expect(canonicalQuantity(input)).to.equal(want);
    });

  it("refuses what the API server cannot decode, with its message", () => {
    for (const bad of ["", "abc", "1K", "1Mb", "1.2.3", "Gi", "1 Gi", "--1"])
      expect(() => parseQuantity(bad), bad).to.throw(/quantities must match|suffix/);
    expect(() => parseQuantity("x")).to.throw(QUANTITY_FORMAT_ERROR);
  });

  it("compares by value, not by text", () => {
    expect(sameQuantity("2048Mi", "2Gi")).to.equal(true);
    expect(sameQuantity("1000m", "1")).to.equal(true);
    expect(sameQuantity(1, "1")).to.equal(true);
    expect(sameQuantity("1Gi", "1G")).to.equal(false);
    expect(sameQuantity("1", "x")).to.equal(false);
    expect(compareQuantities("500m", "1")).to.equal(-1);
    expect(compareQuantities("1Ki", "1k")).to.equal(1);
  });

  it("canonical forms are fixed points that keep the value", () => {
    const suffix = fc.constantFrom("", "m", "k", "M", "G", "Ki", "Mi", "Gi", "Ti");
    fc.assert(
      fc.property(fc.nat(10_000_000), fc.nat(999), suffix, (n, frac, s) => {
        const text = `${n}${frac ? `.${frac}` : ""}${s}`;
        const c = canonicalQuantity(text);
        return canonicalQuantity(c) === c && sameQuantity(text, c);
      }),
    );
  });
});
