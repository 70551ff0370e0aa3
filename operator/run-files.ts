// What every pod of a run mounts, shared by the trainer, inference and worker builders: the
// run's resolved settings (run.json from its ConfigMap) and its token (from its Secret), both
// read-only, and a writable /tmp on an otherwise read-only root filesystem. Pure.
import { type V1Volume, type V1VolumeMount } from "@kubernetes/client-node";
import { names } from "./labels.js";

export const CONFIG_DIR = "/etc/l0";
export const TOKEN_DIR = "/var/run/l0";

/** Volumes every run pod mounts: run.json (read-only) and the run token (read-only, 0440). */
export function runVolumes(runName: string): V1Volume[] {
  return [
    { name: "run-config", configMap: { name: names.config(runName) } },
    { name: "run-token", secret: { secretName: names.token(runName), defaultMode: 0o440 } },
    { name: "tmp", emptyDir: {} },
  ];
}

export const runMounts: V1VolumeMount[] = [
  { name: "run-config", mountPath: CONFIG_DIR, readOnly: true },
  { name: "run-token", mountPath: TOKEN_DIR, readOnly: true },
  { name: "tmp", mountPath: "/tmp" },
];
