"""Connectors reach the database only through their context.

Why: checkpoint and seen-file stores are protocols in ``connectors.base.checkpoints``; the hub
passes SQL-backed ones (``hub.checkpoints``). A connector module that imported the registry or
SQLAlchemy would tie every plugin to the hub's schema again, so this reads every module's
imports (ast, nothing is executed) and names any that do.
"""

from __future__ import annotations

import ast
from pathlib import Path

CONNECTORS = Path(__file__).resolve().parents[2] / "connectors"
FORBIDDEN = ("registry_core", "sqlalchemy", "hub")


def _imported(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_connector_module_imports_the_registry_the_hub_or_sqlalchemy():
    offenders = {}
    modules = sorted(CONNECTORS.rglob("*.py"))
    assert len(modules) > 20  # the tree was found
    for path in modules:
        names = _imported(ast.parse(path.read_text(encoding="utf-8")))
        bad = sorted(n for n in names if n.split(".")[0] in FORBIDDEN)
        if bad:
            offenders[str(path.relative_to(CONNECTORS.parent))] = bad
    assert offenders == {}
