"""Backups of the registry: one archive per run, restorable on SQLite and PostgreSQL.

``srhub backup`` writes ``srhub-backup-<UTC time>.tar`` holding the database (SQLite's online
backup API, or ``pg_dump`` custom format) and a manifest (schema revision, row count of every
table, checksum of the dump, fingerprint of the identifier keys). ``srhub restore`` checks all
of it before and after putting the data back. Keys never go into the archive: a stolen backup
must not carry what unseals the identifiers in it (docs/operations.md, "Backups").
"""

from hub.backup.archive import BackupError
from hub.backup.service import BackupResult, RestoreResult, make_backup, restore_backup

__all__ = ["BackupError", "BackupResult", "RestoreResult", "make_backup", "restore_backup"]
