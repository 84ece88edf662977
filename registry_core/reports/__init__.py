"""Aggregate reports of the registry: coverage of programs by area and population segment,
with small-cell suppression (docs/policy.md, "Coverage reports")."""
