// Kubernetes Events on our objects, so `kubectl describe` tells the story. Recorded only after the
// write they describe succeeded; a failure to record is logged, never fails a reconcile.
import { randomBytes } from "node:crypto";
import { type KubernetesObject } from "@kubernetes/client-node";
import { type Logger, errorFields } from "../../lib/log.js";
import { type KubeApi } from "./kube.js";

export interface PendingEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface EventRecorder {
  record(obj: KubernetesObject, e: PendingEvent): Promise<void>;
}

export function createEventRecorder(api: KubeApi, logger: Logger, component = "l0-operator"): EventRecorder {
  return {
    async record(obj, e) {
      const now = new Date().toISOString();
      const name = obj.metadata?.name ?? "unknown";
      try {
        await api.create("Event", {
          apiVersion: "v1",
          kind: "Event",
          metadata: { name: `${name}.${randomBytes(8).toString("hex")}`, namespace: obj.metadata?.namespace },
          involvedObject: {
            apiVersion: obj.apiVersion,
            kind: obj.kind,
            name,
            namespace: obj.metadata?.namespace,
            uid: obj.metadata?.uid,
            resourceVersion: obj.metadata?.resourceVersion,
          },
          type: e.type,
          reason: e.reason,
          message: e.message,
          source: { component },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        } as KubernetesObject);
      } catch (err) {
        logger.warn("could not record event", { reason: e.reason, object: name, ...errorFields(err) });
      }
    },
  };
}
