"""One logging set-up for every ``srhub`` process.

The hub's own loggers speak at ``SRHUB_LOG_LEVEL``. The libraries under it do not: on RabbitMQ,
pika alone wrote 789 of the first minute's 851 lines (one INFO line per channel opened and
closed), werkzeug one line per HTTP request, alembic one per migration step. An operator
reading the log for what the hub did could not find it. So below ``DEBUG`` those libraries are
held at ``WARNING`` (what goes wrong still shows); ``SRHUB_LOG_LEVEL=DEBUG`` lets everything
through for a session of troubleshooting.

Access logs (werkzeug's at DEBUG, gunicorn's ``gunicorn.access``) write each request line,
query string included, and identifier searches are GET requests: ``?identifier=national_id|…``
put national IDs in the log. ``AccessLogRedaction`` replaces the values of the query parameters
that can carry a person's identifier or name with ``[redacted]`` before any handler sees
the line; ``install_access_log_redaction`` attaches it (``configure_logging`` and every app
built by ``hub.api.create_app``, so gunicorn workers are covered too).
"""

from __future__ import annotations

import logging
import re
import traceback

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


# Query parameters whose values can be a national ID, another identifier or a name.
REDACTED_PARAMETERS: tuple[str, ...] = (
    "identifier",
    "national_id",
    "nid",
    "q",
    "name",
    "given_name",
    "family_name",
    "birth_date",
    "value",
    "search",
)
ACCESS_LOGGERS: tuple[str, ...] = ("werkzeug", "gunicorn.access")
REDACTED = "[redacted]"

_PARAMETER = re.compile(
    r"(?P<key>(?<=[?&;])(?:" + "|".join(re.escape(p) for p in REDACTED_PARAMETERS) + r")=)"
    r"(?P<value>[^&;\s\"']*)",
    re.IGNORECASE,
)


def redact_query_values(text: str) -> str:
    """``text`` with the values of identifier- and name-bearing query parameters replaced."""
    return _PARAMETER.sub(lambda m: m["key"] + REDACTED, text)


class AccessLogRedaction(logging.Filter):
    """Rewrites an access-log record's message with ``redact_query_values`` (never drops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is left to the handler
            return True
        redacted = redact_query_values(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


def install_access_log_redaction() -> None:
    """Attach one ``AccessLogRedaction`` to each access logger (idempotent)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, AccessLogRedaction) for f in logger.filters):
            logger.addFilter(AccessLogRedaction())


def _database_error(error: BaseException | None) -> BaseException | None:
    """``error`` or the first of its causes that came from the database driver or SQLAlchemy."""
    seen = 0
    while error is not None and seen < 10:
        module = type(error).__module__
        if module.startswith(("sqlalchemy", "psycopg", "sqlite3")):
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def safe_exception_text(error: BaseException) -> str:
    """The traceback of ``error`` with the database errors' messages withheld.

    A database error's text carries the statement, its bound parameters (unless the engine
    hides them) and the server's DETAIL line (``Key (…)=(…) already exists``): names, dates of
    birth and addresses. The frames and the error classes stay, so the log still says where.
    """
    parts: list[str] = []
    current: BaseException | None = error
    depth = 0
    while current is not None and depth < 5:
        frames = "".join(traceback.format_tb(current.__traceback__))
        if _database_error(current) is current:
            state = getattr(getattr(current, "orig", current), "sqlstate", None)
            message = "details withheld (they may hold personal data)" + (
                f"; SQLSTATE {state}" if state else ""
            )
        else:
            message = str(current)
        kind = f"{type(current).__module__}.{type(current).__qualname__}"
        parts.append(f"Traceback (most recent call last):\n{frames}{kind}: {message}")
        current = current.__cause__ or current.__context__
        depth += 1
    return "\n\nWhile handling or caused by:\n".join(reversed(parts))


class DatabaseErrorRedaction(logging.Filter):
    """On a handler: a record carrying a database error logs ``safe_exception_text`` instead
    of the error's own text (which can hold the statement's parameters)."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        if info and info[1] is not None and _database_error(info[1]) is not None:
            record.exc_text = safe_exception_text(info[1])
        return True


def install_database_error_redaction() -> None:
    """Attach one ``DatabaseErrorRedaction`` to each handler of the root logger (idempotent)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, DatabaseErrorRedaction) for f in handler.filters):
            handler.addFilter(DatabaseErrorRedaction())


def configure_logging(level: str) -> None:
    """Log at ``level`` (a logging level name), libraries at WARNING unless it is DEBUG."""
    name = level.upper()
    logging.basicConfig(level=name, format=LOG_FORMAT)
    logging.getLogger().setLevel(name)
    library_level = logging.DEBUG if name == "DEBUG" else logging.WARNING
    for library in QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(library_level)
    install_access_log_redaction()
    install_database_error_redaction()
