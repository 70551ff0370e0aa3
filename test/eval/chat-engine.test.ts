// A full NB-Agent episode (real sandboxed kernel) driven through an endpoint that offers only
// /v1/chat/completions, as a hosted API does: the notebook goes out as chat messages with the
// key as a bearer token, the reply's cell runs, and its answer is the episode's.
import { expect } from "chai";
import http from "node:http";
import { type AddressInfo } from "node:net";
import { silentLogger } from "../../lib/log.js";
import { l0 } from "../../lib/proto.js";
import { runEpisode } from "../../images/worker/agent/episode.js";
import { NoTools } from "../../images/worker/tools.js";
import { ChatEngine } from "../../eval/chat-engine.js";
import { testMetrics, testPool } from "../worker/fixtures/sandbox.js";
import { agentSettings } from "../fixtures/runs.js";

interface ChatRequest {
  model: string;
  messages: { role: string; content: string }[];
  stop: string[];
  auth: string;
}

async function chatServer(
  replies: (string | number)[],
): Promise<{ url: string; requests: ChatRequest[]; close: () => Promise<void> }> {
  const requests: ChatRequest[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (req.url !== "/v1/chat/completions") {
        res.writeHead(404).end();
        return;
      }
      requests.push({ ...(JSON.parse(body) as ChatRequest), auth: req.headers.authorization ?? "" });
      const r = replies.shift() ?? 500;
      if (typeof r === "number") {
        res.writeHead(r, { "content-type": "application/json" }).end('{"error":{"message":"busy"}}');
        return;
      }
      // As OpenAI does: the text up to the stop sequence, which is not included.
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: r.split("</code>")[0] },
              finish_reason: "stop",
            },
          ],
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe("eval chat engine", function () {
  this.timeout(60_000);

  it("runs an episode through /v1/chat/completions only, retrying a busy endpoint", async () => {
    const s = await chatServer([429, "<think>multiply</think>\n<code>\nsubmit_final_answer(6 * 7)\n</code>"]);
    const { pool } = testPool(1);
    const engine = new ChatEngine({
      baseUrl: s.url,
      apiKey: "sk-test",
      timeoutMs: 5000,
      attempts: 3,
      backoffMs: 1,
      sleep: () => Promise.resolve(),
    });
    try {
      const t = await runEpisode(
        {
          taskId: "t1",
          leaseId: "l1",
          prompt: "What is 6 * 7?",
          agent: agentSettings({ model: "gpt-x", maxTurns: 2 }),
        },
        {
          kernels: pool,
          engine,
          tools: new NoTools(),
          metrics: testMetrics().metrics,
          logger: silentLogger(),
          workerId: "eval",
          observationChars: 2000,
          maxEpisodeSeconds: 60,
        },
        { signal: new AbortController().signal },
      );
      expect(t.end, t.endDetail ?? "").to.equal(l0.v1.EpisodeEnd.EPISODE_END_ANSWERED);
      expect(t.finalAnswer).to.equal("42");
      expect(t.turns).to.have.length(1);
      expect(t.turns![0]!.formatOk).to.equal(true);
      expect(s.requests).to.have.length(2);
      const req = s.requests[1]!;
      expect(req).to.deep.include({ model: "gpt-x", auth: "Bearer sk-test" });
      expect(req.stop).to.deep.equal(["</code>"]);
      expect(req.messages[0]!.role).to.equal("system");
      expect(req.messages.at(-1)!.content).to.include("What is 6 * 7?");
    } finally {
      await pool.close();
      await s.close();
    }
  });
});
