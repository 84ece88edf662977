"""Handing a whole large file to the registry's bulk loader instead of publishing its rows.

Why: a national tax extract is a million rows. Published one raw record each on
``sr.inbound``, it is a million messages applied one at a time by the ingest worker (a couple
of hundred a second: hours). The registry's bulk loader (``hub.bulk``: the same mapping spec,
matching and provenance, written set-based in batches with a checkpoint) takes it in minutes.
A file connector decides, per file, which way its rows go (the tax connector: by the
manifest's row count against its ``bulk_threshold``); the hub gives the loader to the
connectors it runs in a process that holds the registry (``ConnectorContext.bulk_loader``).

The contract is small on purpose — rows in, counts and refused rows out — so a connector
stays free of the registry's code, and a test can give a fake loader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from connectors.base.errors import ConnectorError


@dataclass(frozen=True)
class BulkRow:
    """One good row of the file (already checked by the connector): ``number`` is its
    1-based position among the file's records, the key of the loader's checkpoint."""

    number: int
    values: Mapping[str, Any]


@dataclass(frozen=True)
class BulkRefusal:
    """A row the loader refused (mapping, matching): why, and the mapping's problems
    (source column, target, rule, message; never a value)."""

    number: int
    reason: str
    problems: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BulkLoadResult:
    """What became of the rows: the loader's counts (``applied``, ``already_applied``,
    ``not_in_household``, ``review`` ...), how many were refused, and whether the load
    continued an earlier, interrupted one (``resumed_after``: the last row it had kept)."""

    counts: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    resumed_after: int = 0
    already_loaded: bool = False


class BulkLoadUnavailable(ConnectorError):
    """The registry could not be written (database down, connection lost). The rows kept
    so far are committed with a checkpoint; the file must stay where it is and be handled
    again later, when the load continues after the last kept row. Its message is ours (no
    driver text), so the connector's status shows it."""


class BulkLoader(Protocol):
    def load(
        self,
        path: Path,
        spec: str,
        rows: Iterable[BulkRow],
        *,
        source_system: str,
        on_refused: Callable[[BulkRefusal], None],
    ) -> BulkLoadResult:
        """Load ``rows`` of ``path`` (its content names the checkpoint) through mapping
        ``spec``; report each refused row to ``on_refused``; raise ``BulkLoadUnavailable``
        when the registry cannot be written."""
        ...
