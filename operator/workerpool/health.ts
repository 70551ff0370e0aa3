// Why a pool's workers cannot start, read from its Deployment's ReplicaFailure condition (the
// ReplicaSet controller's pod-creation error, copied to the Deployment): a missing RuntimeClass,
// the namespace's Pod Security level, or any other refusal. The verdict names the Deployment and
// the pool field to change. Pure.
import { type V1Deployment } from "@kubernetes/client-node";
import { type Verdict } from "../verdict.js";

export function startProblem(deploy: V1Deployment | undefined): Verdict | undefined {
  const failure = deploy?.status?.conditions?.find((c) => c.type === "ReplicaFailure" && c.status === "True");
  if (!failure) return undefined;
  const what = `Deployment ${deploy!.metadata?.name} cannot create worker pods`;
  const text = failure.message ?? failure.reason ?? "pod creation failed";
  const rc = /RuntimeClass "([^"]+)" not found/.exec(text);
  if (rc)
    return {
      reason: "RuntimeClassNotFound",
      message: `${what}: RuntimeClass ${JSON.stringify(rc[1])} (spec.sandbox.runtimeClassName) does not exist in the cluster: install it (e.g. gVisor) or use spec.sandbox.mode bwrap`,
    };
  const psa = /violates PodSecurity "([^"]+)": (.*)$/s.exec(text);
  if (psa)
    return {
      reason: "PodSecurityForbidden",
      message: `${what}: namespace ${deploy!.metadata?.namespace} enforces Pod Security ${JSON.stringify(psa[1])}: ${psa[2]}; spec.sandbox.mode bwrap needs the privileged level (docs/operator.md), runtimeClass mode fits restricted`,
    };
  return { reason: "PodCreateFailed", message: `${what}: ${text}` };
}
