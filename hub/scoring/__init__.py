"""Policy in the hub: the scoring worker (incremental re-score) and the CLI/API around
``registry_core.scoring`` (docs/policy.md)."""
