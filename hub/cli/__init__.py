"""The ``srhub`` command line (entry point ``hub.cli:main``).

One module per command group (``db``, ``run``, ``tokens``, ``keys``, ``workers``,
``dead_letters``, ``dedup``, ``dci``, ``users``, ``monitoring``, ``subscriptions``); ``root``
holds the group that imports them on first use, ``errors`` the error tree and its exit codes,
``database`` the one way a command opens the database (refusing a schema that is not at head).
"""

from hub.cli.root import main

__all__ = ["main"]
