"""Admin areas as the GIS partner draws them: code, level, name, parent, polygon and layer
values, kept so that reports and the policy pages can draw maps (docs/policy.md,
"Executive dashboard")."""
