// Reading workers' active episodes over real HTTP (loopback servers standing in for pods): the
// input of the pod-deletion-cost annotations.
import { createServer, type ServerResponse } from "node:http";
import { type AddressInfo } from "node:net";
import { expect } from "chai";
import { readActiveEpisodes } from "../../operator/autoscaler/active-episodes.js";

async function pod(handler: (res: ServerResponse) => void): Promise<{ port: number; close(): void }> {
  const s = createServer((req, res) => (req.url === "/episodes" ? handler(res) : res.writeHead(404).end()));
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  return {
    port: (s.address() as AddressInfo).port,
    close: () => {
      s.closeAllConnections();
      s.close();
    },
  };
}

describe("active episodes from the workers' /episodes", () => {
  const pods: { close(): void }[] = [];
  after(() => pods.forEach((p) => p.close()));
  const read = (port: number, name = "w") =>
    readActiveEpisodes([{ name, ip: "127.0.0.1" }], { port, timeoutMs: 300 });

  it("reads a worker's active episodes", async () => {
    const p = await pod((res) => res.end(JSON.stringify({ active: 3, capacity: 8, draining: false })));
    pods.push(p);
    expect([...(await read(p.port, "w-1"))]).to.deep.equal([["w-1", 3]]);
  });

  it("leaves out pods that answer nonsense, an error, or nothing in time, and pods without an IP", async () => {
    const junk = await pod((res) => res.end("{"));
    const negative = await pod((res) => res.end(JSON.stringify({ active: -1 })));
    const failing = await pod((res) => res.writeHead(503).end("draining"));
    const slow = await pod(() => undefined);
    pods.push(junk, negative, failing, slow);
    for (const p of [junk, negative, failing, slow]) expect((await read(p.port)).size).to.equal(0);
    expect((await readActiveEpisodes([{ name: "pending" }], { port: junk.port })).size).to.equal(0);
  });
});
