"""The message pipeline: ingest (inbound -> registry), relay (outbox -> broker), dispatch.

Each part offers what the generic runtime (``hub.workers``) runs: handler factories
(``ingest.ingest_handlers``, ``dispatch.dispatch_handlers``) and the relay worker
(``relay_worker.RelayWorker``). ``hub.assembly`` builds the workers from them.
"""
