// A decision with its reason and message: what every policy, check and preflight returns
// (cert-manager's policies shape). The reason becomes a condition's reason (CamelCase), the
// message names the field or object for a human.
export interface Verdict {
  reason: string;
  message: string;
}
