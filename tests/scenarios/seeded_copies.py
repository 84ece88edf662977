"""The scenario hub's seeded registry, made once per test session and copied for each story.

Registering the sandbox survey's households one by one through the registry service (what
``live_hub`` needs before its partners start) took 4.5 s per story on PostgreSQL and about
2.5 s on SQLite, for some thirty stories. The seed is the same for every story with the same
population and the same households kept out of it, so it is made once per backend and kind of
seed, then copied: ``CREATE DATABASE … TEMPLATE`` on PostgreSQL, a file copy on SQLite.

A copy is the seeded database exactly, outbox included (the seed's ``household.created`` events
are still unpublished, as they are when a story seeds its own registry before its workers
start). The identifiers in it are sealed with the seed's keys, so the copy comes with the
seed's key file, placed where the story's hub reads its keys.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from tests.conftest import fresh_postgres_database, migrated_sqlite

KEY_FILE = "keys.json"


@dataclass(frozen=True)
class Seeded:
    """One seeded registry: its database (a URL) and the key file its identifiers need."""

    url: str
    keys: Path


def seed_into(
    url: str, data_dir: Path, households: Sequence[Any], settings_for: Callable[..., Any]
) -> None:
    """Seed the migrated database at ``url`` as ``live_hub`` always did, keys in ``data_dir``."""
    from hub.runtime import HubRuntime
    from hub.sandbox_seed import seed_registry

    runtime = HubRuntime(settings_for(url, data_dir))
    try:
        runtime.registry.ensure_identifier_systems()
        assert seed_registry(runtime.registry, households) > 50
    finally:
        runtime.close()


class SeededCopies:
    """Per test session: the seeded registries made so far, by backend and population; hands
    out copies, and drops the PostgreSQL databases it made."""

    def __init__(self, work_dir: Path) -> None:
        self._work_dir = work_dir
        self._seeded: dict[tuple[Any, ...], Seeded] = {}
        self._databases = ExitStack()  # the seeded PostgreSQL databases, dropped on close

    def _make(
        self,
        empty_url: str,
        households: Sequence[Any],
        settings_for: Callable[..., Any],
        sqlite_template: Callable[[], Path],
    ) -> Seeded:
        from hub.dbschema import upgrade_to_head

        folder = self._work_dir / f"seed-{len(self._seeded)}"
        data_dir = folder / "var"
        if empty_url.startswith("sqlite"):
            url = migrated_sqlite(sqlite_template(), folder / "seeded.db")
        else:
            url = self._databases.enter_context(fresh_postgres_database("srhub_seeded"))
            upgrade_to_head(url)
        seed_into(url, data_dir, households, settings_for)
        if url.startswith("sqlite"):  # the copy is of the file alone: nothing may be in a WAL
            path = Path(make_url(url).database or "")
            for suffix in ("-wal", "-shm"):
                leftover = path.with_name(path.name + suffix)
                assert not leftover.exists() or leftover.stat().st_size == 0, leftover
        return Seeded(url, data_dir / KEY_FILE)

    @contextmanager
    def copy(
        self,
        empty_url: str,
        population: tuple[Any, ...],
        households: Sequence[Any],
        data_dir: Path,
        settings_for: Callable[..., Any],
        *,
        sqlite_template: Callable[[], Path],
    ) -> Iterator[str]:
        """A copy of the registry seeded with ``households`` (``population`` names them: the
        sandbox's seed, size and date, and how many are kept out), on ``empty_url``'s backend,
        with the seed's key file placed in ``data_dir``; a PostgreSQL copy is dropped after.
        ``settings_for(url, data_dir)`` gives the hub's settings, as the story's hub has them;
        ``sqlite_template`` the session's migrated SQLite file."""
        kind = "sqlite" if empty_url.startswith("sqlite") else "postgresql"
        key = (kind, *population)
        seeded = self._seeded.get(key)
        if seeded is None:
            seeded = self._seeded[key] = self._make(
                empty_url, households, settings_for, sqlite_template
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seeded.keys, data_dir / KEY_FILE)
        if kind == "sqlite":
            path = data_dir.parent / "story.db"
            shutil.copyfile(make_url(seeded.url).database or "", path)
            yield f"sqlite:///{path.as_posix()}"
            return
        with fresh_postgres_database("srhub_story", template=make_url(seeded.url).database) as url:
            yield url

    def close(self) -> None:
        """Drop the seeded PostgreSQL databases."""
        self._seeded.clear()
        self._databases.close()
