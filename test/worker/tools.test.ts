// The HTTP tool backend against a real Serper-compatible server on loopback: the API key goes
// in the header (never to the kernel), results are formatted, and read() refuses local hosts.
import http from "node:http";
import { type AddressInfo } from "node:net";
import { expect } from "chai";
import { HttpSearch, assertPublicHost, isNonPublicAddress } from "../../images/worker/tools.js";

describe("worker tools: HTTP search backend", () => {
  let server: http.Server;
  let base: string;
  const keys: (string | undefined)[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      keys.push(req.headers["x-api-key"] as string | undefined);
      if (req.url === "/search" && req.method === "POST") {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => {
          const { q } = JSON.parse(body) as { q: string };
          res.writeHead(200, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              organic: [{ title: `About ${q}`, link: "https://example.org/a", snippet: "A snippet." }],
            }),
          );
        });
        return;
      }
      if (req.url === "/page") {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<html><script>evil()</script><p>Velmir was&nbsp;founded in <b>1694</b>.</p></html>");
        return;
      }
      res.writeHead(500);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it("searches with the key in the header and formats the hits", async () => {
    const s = new HttpSearch({ url: base, apiKey: "k-123", timeoutMs: 2000 });
    const out = await s.search("Velmir");
    expect(out).to.equal("1. [https://example.org/a] About Velmir\n   A snippet.");
    expect(keys.at(-1)).to.equal("k-123");
  });

  it("refuses to read local and private addresses (SSRF from inside the cluster)", async () => {
    const s = new HttpSearch({ url: base, apiKey: "k", timeoutMs: 2000 });
    for (const url of [
      `${base}/page`,
      "http://169.254.169.254/latest/meta-data/",
      "http://[::1]/",
      "http://10.0.0.1/",
    ])
      await s.read(url).then(
        () => expect.fail(`read(${url}) must be refused`),
        (e: Error) => expect(e.message).to.match(/private or local address/),
      );
    await s.read("file:///etc/passwd").then(
      () => expect.fail("file: must be refused"),
      (e: Error) => expect(e.message).to.match(/http\(s\) URL/),
    );
  });

  it("reads a page as text when the host is allowed", async () => {
    const s = new HttpSearch({ url: base, apiKey: "k", timeoutMs: 2000, checkHost: () => Promise.resolve() });
    expect(await s.read(`${base}/page`)).to.equal("Velmir was founded in 1694 .");
  });

  it("reports an API failure as an error (an observation in the kernel, never a crash)", async () => {
    const s = new HttpSearch({ url: `${base}/broken`, apiKey: "k", timeoutMs: 2000 });
    await s.search("x").then(
      () => expect.fail("must fail"),
      (e: Error) => expect(e.message).to.match(/answered 500/),
    );
  });

  it("classifies addresses", async () => {
    for (const ip of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "fd00::1",
      "fe80::1",
      "::ffff:127.0.0.1",
    ])
      expect(isNonPublicAddress(ip), ip).to.equal(true);
    for (const ip of ["1.1.1.1", "8.8.8.8", "172.32.0.1", "2606:4700::1111"])
      expect(isNonPublicAddress(ip), ip).to.equal(false);
    await assertPublicHost("1.1.1.1");
  });
});
