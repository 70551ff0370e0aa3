"""L0 learner: the policy, its policy-gradient loss and optimizer step, checkpoints, weight
export, and (CPU path) an OpenAI-compatible engine serving the current policy."""
