"""The one way a command opens the database: the schema must already be at head.

Only ``srhub db upgrade`` and ``srhub run`` migrate. Any other command that finds the schema
behind (or the database empty) stops with ``run `srhub db upgrade``` instead of changing a
production schema as a side effect of, say, listing users.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from hub.settings import Settings, load_settings

if TYPE_CHECKING:  # the runtime pulls in the registry services: imported when used
    from sqlalchemy.orm import Session

    from hub.runtime import HubRuntime


@contextmanager
def database_session(settings: Settings | None = None) -> Iterator[Session]:
    """A session in one transaction, committed when the block ends without an error."""
    from hub.dbschema import require_current_schema
    from registry_core.db import make_engine, make_session_factory, transaction

    engine = make_engine((settings or load_settings()).effective_database_url)
    try:
        require_current_schema(engine)
        with transaction(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


@contextmanager
def hub_runtime(settings: Settings | None = None) -> Iterator[HubRuntime]:
    """The hub's runtime (registry services, sessions, keys) for commands that need more
    than one session; closed when the block ends."""
    from hub.dbschema import require_current_schema
    from hub.runtime import HubRuntime

    runtime = HubRuntime(settings or load_settings())
    try:
        require_current_schema(runtime.engine)
        yield runtime
    finally:
        runtime.close()


def check_schema(settings: Settings) -> None:
    """The same refusal for commands that reach the database through something else (the
    embedded broker's tables, a worker's own engine)."""
    from hub.dbschema import require_current_schema
    from registry_core.db import make_engine

    engine = make_engine(settings.effective_database_url)
    try:
        require_current_schema(engine)
    finally:
        engine.dispose()
