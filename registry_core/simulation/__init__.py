"""What-if simulations of policy: scenarios evaluated set-based, read-only (docs/policy.md)."""
