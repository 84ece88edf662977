"""The message pipeline: ingest (inbound -> registry), relay (outbox -> broker), dispatch."""
