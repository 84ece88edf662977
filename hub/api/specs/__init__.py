"""OpenAPI fragments, one per blueprint (data files; a package so wheels ship them)."""
