"""What one mapping run can read: the source record and the bindings defined so far.

Shared by the engine and the code hooks, so a hook reads the record with the same path
language (and gets the same concrete source paths for its error messages) as a spec does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mappings.paths import Located, Path, is_blank, parse, walk


class HookProblem(ValueError):
    """A hook found the record unusable; ``path`` points at the source field concerned."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class Context:
    record: Any
    bindings: dict[str, Located] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)  # per-record memo for hooks

    def start(self, path: Path) -> Located | None:
        """Where ``path`` starts: the record, or a binding (None if that binding is missing)."""
        if path.root is None:
            return Located(self.record, "$")
        return self.bindings.get(path.root)

    def iter(self, path: Path | str) -> Iterator[Located]:
        """The non-blank values ``path`` reaches, lazily, in document order."""
        parsed = parse(path) if isinstance(path, str) else path
        start = self.start(parsed)
        if start is None:
            return iter(())
        return (hit for hit in walk(start, parsed.steps) if not is_blank(hit.value))

    def read(self, path: Path | str) -> list[Located]:
        """Every non-blank value ``path`` reaches, in document order."""
        return list(self.iter(path))

    def first(self, path: Path | str) -> Located | None:
        return next(self.iter(path), None)
