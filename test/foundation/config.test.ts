// The config loader: precedence flag > environment > default, and errors that name the
// flag and its variable.
import { expect } from "chai";
import { Command } from "commander";
import { addOptions, defineConfig, loadConfig, parseDuration, redact } from "../../lib/config.js";
import { L0Error } from "../../lib/errors.js";

const spec = defineConfig({
  port: { type: "int", default: 7070, min: 1, max: 65535, description: "gRPC port" },
  token: { type: "string", required: true, secret: true, description: "run token" },
  leaseTimeout: { type: "duration", default: "30s", description: "lease timeout" },
  mode: { type: "enum", values: ["strict", "async"], default: "strict", description: "mode" },
  verbose: { type: "bool", default: false, description: "verbose" },
  name: { type: "string", description: "optional name" },
});

describe("config loader", () => {
  it("takes flags over environment over defaults, and converts types", () => {
    const c = loadConfig(spec, {
      envPrefix: "L0_T_",
      flags: { port: "9000" },
      env: { L0_T_PORT: "8000", L0_T_TOKEN: "s3cret", L0_T_LEASE_TIMEOUT: "1.5m", L0_T_VERBOSE: "yes" },
    });
    expect(c).to.deep.include({
      port: 9000,
      token: "s3cret",
      leaseTimeout: 90_000,
      mode: "strict",
      verbose: true,
    });
    expect(c.name).to.equal(undefined);
  });

  it("prefers an environment value over a flag that only holds commander's default", () => {
    const cmd = addOptions(new Command("t"), spec, "L0_T_");
    cmd.parse([], { from: "user" });
    const c = loadConfig(spec, {
      envPrefix: "L0_T_",
      flags: cmd.opts(),
      env: { L0_T_PORT: "8123", L0_T_TOKEN: "t" },
    });
    expect(c.port).to.equal(8123);
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ["non-integer port", { L0_T_PORT: "80.5" }, /--port \(L0_T_PORT\): must be an integer/],
    ["port out of range", { L0_T_PORT: "70000" }, /--port \(L0_T_PORT\): must be at most 65535/],
    [
      "bad duration",
      { L0_T_LEASE_TIMEOUT: "soon" },
      /--lease-timeout \(L0_T_LEASE_TIMEOUT\): must be a duration/,
    ],
    ["bad enum", { L0_T_MODE: "eventual" }, /--mode \(L0_T_MODE\): must be one of strict, async/],
    ["bad bool", { L0_T_VERBOSE: "maybe" }, /--verbose \(L0_T_VERBOSE\): must be true or false/],
  ];
  for (const [name, env, message] of bad) {
    it(`rejects ${name}, naming the flag and variable`, () => {
      expect(() => loadConfig(spec, { envPrefix: "L0_T_", env: { L0_T_TOKEN: "t", ...env } })).to.throw(
        L0Error,
        message,
      );
    });
  }

  it("reports every missing required field at once and never echoes a secret", () => {
    let err: L0Error | undefined;
    try {
      loadConfig(spec, { envPrefix: "L0_T_", env: { L0_T_PORT: "x" } });
    } catch (e) {
      err = e as L0Error;
    }
    expect(err?.violations.map((v) => v.field)).to.deep.equal(["--port (L0_T_PORT)", "--token (L0_T_TOKEN)"]);
    const c = loadConfig(spec, { envPrefix: "L0_T_", env: { L0_T_TOKEN: "hunter2" } });
    expect(JSON.stringify(redact(spec, c))).not.to.contain("hunter2");
  });

  it("parses durations", () => {
    expect([
      parseDuration("250ms"),
      parseDuration("10"),
      parseDuration("2h"),
      parseDuration("-1s"),
    ]).to.deep.equal([250, 10_000, 7_200_000, null]);
  });
});
