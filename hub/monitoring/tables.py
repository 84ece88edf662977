"""The monitoring tables, for the schema (``hub.dbschema.MODEL_MODULES``) and Alembic."""

from hub.monitoring.alerts import Alert
from hub.monitoring.message_log import MessageLogEntry

__all__ = ["Alert", "MessageLogEntry"]
