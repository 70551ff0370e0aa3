// What a client cannot make the bulk server (lib/weights/bulk.ts) hold, over real loopback
// sockets with short deadlines passed as options: a connection after its error answer, a request
// trickled a byte at a time, more connections than its bound. And what it does hold: an
// authorized range that takes longer than the request deadline.
import net from "node:net";
import { expect } from "chai";
import { L0Error } from "../../lib/errors.js";
import { silentLogger } from "../../lib/log.js";
import {
  type BulkServer,
  bulkPull,
  type BulkServerOptions,
  startBulkServer,
} from "../../lib/weights/bulk.js";
import { type RangeSource } from "../../lib/weights/stream.js";
import { until } from "./fixtures.js";
import { TOKEN } from "./harness.js";

/** Serves "hello" from any offset, after `delay` (a relaying peer waiting for its bytes). */
const hello = (delay?: () => Promise<void>): RangeSource => ({
  serveRange: async (req, out) => {
    await delay?.();
    await new Promise<void>((done) => out.write(Number(req.offset), Buffer.from("hello"), done));
  },
});

const request = (token: string) =>
  JSON.stringify({ v: 1, authorization: `Bearer ${token}`, version: 1, shard: "a", offset: 0 }) + "\n";

/** A client that keeps its side open after the server's end (half-open), as a careless one would. */
function halfOpen(port: number, send: string) {
  const sock = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  sock.on("error", () => undefined);
  let text = "";
  sock.on("data", (d: Buffer) => (text += d.toString()));
  const answered = new Promise<string>((r) => sock.once("end", () => r(text)));
  sock.write(send);
  return { sock, answered };
}

async function pullAll(port: number): Promise<string> {
  const st = bulkPull(
    `127.0.0.1:${port}`,
    { version: 1, shard: "a", offset: 0, puller: "p" },
    { token: TOKEN },
  );
  let got = "";
  for await (const p of st.pieces) got += p.data.toString();
  return got;
}

describe("weights: bulk server limits", function () {
  const servers: BulkServer[] = [];
  const clients: net.Socket[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    for (const s of servers.splice(0)) await s.close();
  });
  const start = async (o: Partial<BulkServerOptions> = {}) => {
    const srv = await startBulkServer({
      source: hello(),
      token: TOKEN,
      logger: silentLogger(),
      host: "127.0.0.1",
      port: 0,
      ...o,
    });
    servers.push(srv);
    return srv;
  };

  it("destroys connections whose clients got an error answer and never close", async () => {
    const srv = await start({ lingerMs: 20 });
    const conns = Array.from({ length: 20 }, () => halfOpen(srv.port, request("wrong")));
    clients.push(...conns.map((c) => c.sock));
    for (const c of conns) expect(await c.answered).to.match(/"kind":"Unauthenticated"/);
    // Resolves only once every server-side socket has closed: the clients never close theirs.
    await srv.close({ graceful: true });
  });

  it("destroys a connection whose request trickles in past the request deadline", async () => {
    const srv = await start({ requestTimeoutMs: 100 });
    const slow = net.connect({ host: "127.0.0.1", port: srv.port, allowHalfOpen: true });
    clients.push(slow);
    slow.on("error", () => undefined);
    const closed = new Promise((r) => slow.once("close", r));
    const trickle = setInterval(() => slow.writable && slow.write("{"), 10); // never idle for long
    try {
      await closed; // the server's reset, as the client goes on writing
    } finally {
      clearInterval(trickle);
    }
  });

  it("keeps an authorized range open past the request deadline", async () => {
    let release!: () => void;
    const waiting = new Promise<void>((r) => (release = r));
    const srv = await start({ requestTimeoutMs: 20, source: hello(() => waiting) });
    const got = pullAll(srv.port);
    // The range waits for bytes until well after the deadline.
    await new Promise((r) => setTimeout(r, 100));
    release();
    expect(await got).to.equal("hello");
  });

  it("answers Unavailable (TooManyConnections) beyond maxConnections, and serves again once some close", async () => {
    const srv = await start({ maxConnections: 2, lingerMs: 20 });
    const held = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<net.Socket>((r) => {
            const s = net.connect({ host: "127.0.0.1", port: srv.port }, () => r(s));
            s.on("error", () => undefined);
          }),
      ),
    );
    clients.push(...held);
    const err = await pullAll(srv.port).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(L0Error);
    expect((err as L0Error).kind).to.equal("Unavailable");
    expect((err as L0Error).reason).to.equal("TooManyConnections");
    for (const s of held) s.destroy();
    expect(await until(() => pullAll(srv.port).catch(() => null), "served again")).to.equal("hello");
  });
});
