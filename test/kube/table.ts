// `Accept: application/json;as=Table;g=meta.k8s.io;v=v1` for custom resources: the CRD's
// additionalPrinterColumns as a meta.k8s.io/v1 Table (what `kubectl get trainingruns` prints).
import { getPath, type Obj } from "./types.js";

interface Column {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

export function wantsTable(accept: string | undefined): boolean {
  return /as=Table/.test(accept ?? "");
}

/** duration.HumanDuration, as the API server formats `date` columns. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < -1) return "<invalid>";
  if (s < 0) return "0s";
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (h < 24 * 365 * 2) return `${d}d`;
  const y = Math.floor(d / 365);
  return h < 24 * 365 * 8 && d % 365 !== 0 ? `${y}y${d % 365}d` : `${y}y`;
}

function columnsOf(crd: Obj, version: string): Column[] {
  const v = ((crd.spec?.versions ?? []) as Obj[]).find((x) => x.name === version) ?? {};
  const cols = (v.additionalPrinterColumns ?? crd.spec?.additionalPrinterColumns) as Column[] | undefined;
  return cols ?? [{ name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" }];
}

export function toTable(crd: Obj, version: string, items: Obj[], resourceVersion: string, now: Date): Obj {
  const cols = columnsOf(crd, version);
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion },
    columnDefinitions: [
      {
        name: "Name",
        type: "string",
        format: "name",
        description: "Name must be unique within a namespace.",
        priority: 0,
      },
      ...cols.map((c) => ({
        name: c.name,
        type: c.type,
        format: c.format ?? "",
        description: c.description ?? "",
        priority: c.priority ?? 0,
      })),
    ],
    rows: items.map((o) => ({
      cells: [
        o.metadata.name,
        ...cols.map((c) => {
          const v = getPath(o, c.jsonPath);
          if (v === undefined || v === null) return null;
          return c.type === "date" ? humanDuration(now.getTime() - Date.parse(String(v))) : v;
        }),
      ],
      object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata },
    })),
  };
}
