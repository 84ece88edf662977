"""One logging set-up for every ``srhub`` process.

The hub's own loggers speak at ``SRHUB_LOG_LEVEL``. The libraries under it do not: on RabbitMQ,
pika alone wrote 789 of the first minute's 851 lines (one INFO line per channel opened and
closed), werkzeug one line per HTTP request, alembic one per migration step. An operator
reading the log for what the hub did could not find it. So below ``DEBUG`` those libraries are
held at ``WARNING`` (what goes wrong still shows); ``SRHUB_LOG_LEVEL=DEBUG`` lets everything
through for a session of troubleshooting.
"""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Chatty libraries: their INFO lines describe plumbing, not what the hub did.
QUIET_LIBRARIES: tuple[str, ...] = (
    "pika",
    "werkzeug",
    "alembic",
    "urllib3",
    "zeep",
    "gunicorn.access",
)


def configure_logging(level: str) -> None:
    """Log at ``level`` (a logging level name), libraries at WARNING unless it is DEBUG."""
    name = level.upper()
    logging.basicConfig(level=name, format=LOG_FORMAT)
    logging.getLogger().setLevel(name)
    library_level = logging.DEBUG if name == "DEBUG" else logging.WARNING
    for library in QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(library_level)
