// Fault injection: the next N matching requests fail with 409/429/500 (then the server is
// healthy again), delays, and the request log tests use to see what the client sent.
import { expect } from "chai";
import { startKubeServer, type KubeServer } from "./server.js";
import { apiError, clients, type Clients, mergePatch, TR, trainingRun } from "./testkit.js";

describe("kube server: fault injection", () => {
  let kube: KubeServer;
  let c: Clients;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", sim: false });
    c = clients(kube);
    await c.custom.createNamespacedCustomObject({ ...TR, namespace: "default", body: trainingRun("r") });
  });
  afterEach(() => kube.stop());

  const patchStatus = () =>
    c.custom.patchNamespacedCustomObjectStatus(
      { ...TR, namespace: "default", name: "r", body: { status: { phase: "Running" } } },
      mergePatch,
    );

  it("fails the next N matching requests with the given code, then serves normally", async () => {
    kube.faults.fail({ verb: "patch", resource: "trainingruns", subresource: "status" }, 409, 2);
    const get = await c.custom.getNamespacedCustomObject({ ...TR, namespace: "default", name: "r" });
    expect(get.metadata.name).to.equal("r"); // not matched
    const e1 = await apiError(patchStatus);
    const e2 = await apiError(patchStatus);
    expect([e1.code, e2.code]).to.deep.equal([409, 409]);
    expect(e1.body).to.include({ kind: "Status", reason: "Conflict" });
    expect((await patchStatus()).status.phase).to.equal("Running");
  });

  it("sends 429 with Retry-After and 500 InternalError as Status bodies", async () => {
    kube.faults.fail({ resource: "trainingruns" }, 429).fail({ resource: "trainingruns" }, 500);
    const e429 = await apiError(() => c.custom.listNamespacedCustomObject({ ...TR, namespace: "default" }));
    expect(e429.code).to.equal(429);
    expect(e429.headers["retry-after"]).to.equal("1");
    expect(e429.body.details.retryAfterSeconds).to.equal(1);
    const e500 = await apiError(() => c.custom.listNamespacedCustomObject({ ...TR, namespace: "default" }));
    expect(e500.body).to.include({ code: 500, reason: "InternalError" });
    expect((await c.custom.listNamespacedCustomObject({ ...TR, namespace: "default" })).items).to.have.length(
      1,
    );
  });

  it("a failed write changes nothing", async () => {
    const before = kube.store.resourceVersion;
    kube.faults.fail({ verb: "patch" }, 500);
    await apiError(patchStatus);
    expect(kube.store.resourceVersion).to.equal(before);
  });

  it("delays matching requests", async () => {
    kube.faults.delay({ verb: "get", name: "r" }, 150, 1);
    const t0 = Date.now();
    await c.custom.getNamespacedCustomObject({ ...TR, namespace: "default", name: "r" });
    expect(Date.now() - t0).to.be.at.least(140);
  });

  it("logs each request with its verb and resource", async () => {
    await c.custom.getNamespacedCustomObject({ ...TR, namespace: "default", name: "r" });
    const last = kube.faults.requests.at(-1)!;
    expect(last).to.include({
      verb: "get",
      group: "l0.dev",
      resource: "trainingruns",
      namespace: "default",
      name: "r",
    });
  });
});
