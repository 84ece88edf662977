"""Worker processes: relay, ingest and dispatch, each a loop over the broker.

Submodules are imported where used (``hub.workers.runtime``, ``hub.workers.relay_worker``,
``hub.workers.service``) so that importing the table module ``hub.workers.idempotency`` for the
schema stays cheap.
"""
