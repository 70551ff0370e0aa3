// The OpenAPI documents the server publishes: what kubectl reads from them (the fieldValidation
// parameter of each PATCH, schemas by group-version-kind), and v2's JSON-only negotiation.
import { expect } from "chai";
import { startKubeServer, type KubeServer } from "./server.js";

describe("kube server: /openapi/v2 and /openapi/v3", () => {
  let kube: KubeServer;
  beforeEach(async () => {
    kube = await startKubeServer({ crdDir: "crds", sim: false, token: "" });
  });
  afterEach(() => kube.stop());

  const get = async (path: string, accept = "application/json") => {
    const r = await fetch(`${kube.url}${path}`, { headers: { accept } });
    return { status: r.status, body: (await r.json()) as Record<string, any> };
  };

  it("indexes a document per group-version, each with every served kind", async () => {
    const index = (await get("/openapi/v3")).body;
    expect(Object.keys(index.paths)).to.include.members(["api/v1", "apis/apps/v1", "apis/l0.dev/v1alpha1"]);
    const doc = (await get(index.paths["apis/l0.dev/v1alpha1"].serverRelativeURL)).body;
    const patch = doc.paths["/apis/l0.dev/v1alpha1/namespaces/{namespace}/trainingruns/{name}"].patch;
    expect(patch["x-kubernetes-group-version-kind"]).to.deep.equal({
      group: "l0.dev",
      version: "v1alpha1",
      kind: "TrainingRun",
    });
    // kubectl sends fieldValidation=Strict (server-side validation) only when this is listed.
    expect(patch.parameters.map((p: { name: string }) => p.name)).to.include("fieldValidation");
    const tr = doc.components.schemas["dev.l0.v1alpha1.TrainingRun"];
    expect(tr["x-kubernetes-group-version-kind"]).to.deep.equal([
      { group: "l0.dev", version: "v1alpha1", kind: "TrainingRun" },
    ]);
    expect(tr.properties.spec.required).to.include("model");
    expect(doc.components.schemas[tr.properties.metadata.$ref.split("/").pop()]).to.exist;
    const core = (await get(index.paths["api/v1"].serverRelativeURL)).body;
    const cm = Object.values(core.components.schemas).find((s: any) =>
      s["x-kubernetes-group-version-kind"]?.some((g: { kind: string }) => g.kind === "ConfigMap"),
    ) as Record<string, any>;
    expect(cm.properties.data).to.deep.equal({ type: "object", additionalProperties: { type: "string" } });
  });

  it("serves v2 as JSON with definitions, and 406 to a protobuf-only client", async () => {
    const v2 = await get("/openapi/v2");
    expect(v2.body.swagger).to.equal("2.0");
    const tr = v2.body.definitions["dev.l0.v1alpha1.TrainingRun"];
    expect(tr.properties.metadata.$ref).to.match(/^#\/definitions\//);
    const patch = v2.body.paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"].patch;
    expect(patch.parameters.map((p: { name: string }) => p.name)).to.include("fieldValidation");
    const pb = await get("/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf");
    expect(pb.status).to.equal(406);
    expect((await get("/openapi/v3/apis/nope/v1")).status).to.equal(404);
  });
});
