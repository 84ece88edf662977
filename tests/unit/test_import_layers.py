"""The layers as ARCHITECTURE.md draws them, checked on the source (no imports run).

Allowed edges between top-level packages: hub -> connectors -> mappings -> standards,
hub -> registry_core -> standards, hub -> sandbox_mocks (``srhub run`` starts the sandbox) and
sandbox_mocks -> standards. Inside ``hub/``, no two subpackages may import each other, directly
or through others: ``hub/workers`` is a generic runtime, pipelines and monitoring plug into it.
Every import counts, including those inside functions and under ``TYPE_CHECKING``.

Connectors also never import SQLAlchemy: they reach storage only through the checkpoint and
seen-file stores their context gives them (protocols in ``connectors.base.checkpoints``; the
SQL ones are the hub's), so a plugin never depends on the hub's schema.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "connectors", "mappings", "standards", "registry_core", "sandbox_mocks")
ALLOWED = {
    ("hub", "connectors"),
    ("hub", "mappings"),
    ("hub", "standards"),
    ("hub", "registry_core"),
    ("hub", "sandbox_mocks"),
    ("connectors", "mappings"),
    ("connectors", "standards"),
    ("mappings", "standards"),
    ("registry_core", "standards"),
    ("sandbox_mocks", "standards"),
}


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _sources(package: str) -> list[Path]:
    return [
        p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.relative_to(ROOT).parts
    ]


def test_top_level_packages_import_only_downwards() -> None:
    wrong: list[str] = []
    for package in PACKAGES:
        sources = _sources(package)
        assert len(sources) > 5, package  # the tree was found
        for path in sources:
            for name in _imports(path):
                target = name.split(".")[0]
                if target in PACKAGES and target != package and (package, target) not in ALLOWED:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def _hub_graph() -> dict[str, set[str]]:
    subpackages = {
        p.name for p in (ROOT / "hub").iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    graph: dict[str, set[str]] = defaultdict(set)
    for path in _sources("hub"):
        parts = path.relative_to(ROOT / "hub").parts
        if len(parts) < 2 or parts[0] not in subpackages:
            continue  # a module at hub/ top level (settings, runtime, cli entry) is not a node
        for name in _imports(path):
            words = name.split(".")
            if (
                words[0] == "hub"
                and len(words) > 1
                and words[1] in subpackages
                and words[1] != parts[0]
            ):
                graph[parts[0]].add(words[1])
    return {node: graph.get(node, set()) for node in subpackages}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_cycle_among_hub_subpackages() -> None:
    assert _cycles(_hub_graph()) == []


def test_the_workers_runtime_imports_no_pipeline_or_monitoring() -> None:
    graph = _hub_graph()
    assert graph["workers"] <= {"broker", "settings"}
    assert graph["settings"] == set()  # settings are read by everyone and read no one


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_connectors_reach_storage_only_through_their_context() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources("connectors")
        for name in _imports(path)
        if name.split(".")[0] == "sqlalchemy"
    ]
    assert wrong == []
