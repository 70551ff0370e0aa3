// Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource.Quantity): parsing, the
// canonical form the API server stores (`2048Mi` -> `2Gi`, `1000m` -> `1`), semantic equality and
// ordering. Pure. The exact value is kept as a BigInt mantissa at nano scale, as apimachinery
// rounds every non-zero value up to 1n; values beyond int64 are not capped as the real type does.

export type QuantityFormat = "DecimalSI" | "BinarySI" | "DecimalExponent";

export interface Quantity {
  /** value = mantissa * 10^-9 (nano units), rounded away from zero as apimachinery does. */
  nanos: bigint;
  format: QuantityFormat;
}

/** The message of the real decoding error (a 400 on the API server). */
export const QUANTITY_FORMAT_ERROR =
  "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const SPLIT = /^([+-]?)([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*[-+]?[0-9]*)$/;
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL_BY_EXP = new Map(Object.entries(DECIMAL).map(([k, v]) => [v, k]));
const BINARY_BY_EXP = new Map([[0, ""], ...Object.entries(BINARY).map(([k, v]) => [v / 10, k] as const)]);

const pow = (b: bigint, e: number): bigint => b ** BigInt(e);
/** Integer division rounding away from zero (inf.RoundUp on a positive amount). */
const divUp = (n: bigint, d: bigint): bigint => (n % d === 0n ? n / d : n / d + 1n);

/** Parses a quantity string (or a JSON number); throws Error(QUANTITY_FORMAT_ERROR) etc. when invalid. */
export function parseQuantity(input: string | number): Quantity {
  const str = typeof input === "number" ? String(input) : input;
  if (str === "0") return { nanos: 0n, format: "DecimalSI" };
  const m = SPLIT.exec(str);
  if (!str || !m || (m[2] === "" && m[3] === undefined)) throw new Error(QUANTITY_FORMAT_ERROR);
  const [, sign, whole = "", frac = "", suffix = ""] = m;
  let format: QuantityFormat;
  let base10 = 0;
  let base2 = 0;
  if (suffix in DECIMAL) [format, base10] = ["DecimalSI", DECIMAL[suffix]!];
  else if (suffix in BINARY) [format, base2] = ["BinarySI", BINARY[suffix]!];
  else if (/^[eE][-+]?[0-9]+$/.test(suffix)) [format, base10] = ["DecimalExponent", Number(suffix.slice(1))];
  else throw new Error("unable to parse quantity's suffix");
  // digits * 10^(base10 - frac.length) * 2^base2, in nano units, rounded up.
  const digits = BigInt(`${whole}${frac}` || "0");
  const exp10 = base10 - frac.length + 9;
  const scaled = digits * pow(2n, base2);
  let nanos = exp10 >= 0 ? scaled * pow(10n, exp10) : divUp(scaled, pow(10n, -exp10));
  if (format === "BinarySI" && nanos > 0n && nanos < 1_000_000_000n) format = "DecimalSI";
  if (sign === "-") nanos = -nanos;
  return { nanos, format };
}

/** Mantissa and base-10 exponent with the exponent a multiple of 3 (AsCanonicalBytes). */
function decimalParts(nanos: bigint): { mantissa: bigint; exponent: number } {
  let mantissa = nanos;
  let exponent = -9;
  while (mantissa % 10n === 0n) {
    mantissa /= 10n;
    exponent++;
  }
  const r = exponent % 3;
  if (r === 1 || r === -2) return { mantissa: mantissa * 10n, exponent: exponent - 1 };
  if (r === 2 || r === -1) return { mantissa: mantissa * 100n, exponent: exponent - 2 };
  return { mantissa, exponent };
}

/** The string the API server stores for `q` (Quantity.CanonicalizeBytes). */
export function formatQuantity(q: Quantity): string {
  if (q.nanos === 0n) return "0";
  const abs = q.nanos < 0n ? -q.nanos : q.nanos;
  let format = q.format;
  const whole = abs % 1_000_000_000n === 0n;
  if (format === "BinarySI" && (abs < 1024n * 1_000_000_000n || !whole)) format = "DecimalSI";
  if (format === "BinarySI") {
    let value = q.nanos / 1_000_000_000n;
    let exponent = 0;
    while (value % 1024n === 0n && exponent < 6) {
      value /= 1024n;
      exponent++;
    }
    return `${value}${BINARY_BY_EXP.get(exponent)!}`;
  }
  const { mantissa, exponent } = decimalParts(q.nanos);
  if (format === "DecimalExponent") return exponent === 0 ? `${mantissa}` : `${mantissa}e${exponent}`;
  const suffix = DECIMAL_BY_EXP.get(exponent);
  return suffix === undefined ? `${mantissa}e${exponent}` : `${mantissa}${suffix}`;
}

/** The canonical form of a quantity string (throws when it is not a quantity). */
export const canonicalQuantity = (s: string | number): string => formatQuantity(parseQuantity(s));

/** -1, 0 or 1, by value (`1Gi` equals `1024Mi`, `1` equals `1000m`). */
export function compareQuantities(a: string | number, b: string | number): number {
  const x = parseQuantity(a).nanos;
  const y = parseQuantity(b).nanos;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Equal by value; false when either is not a quantity. */
export function sameQuantity(a: unknown, b: unknown): boolean {
  if ((typeof a !== "string" && typeof a !== "number") || (typeof b !== "string" && typeof b !== "number"))
    return false;
  try {
    return compareQuantities(a, b) === 0;
  } catch {
    return false;
  }
}
