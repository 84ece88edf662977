"""Monitoring: how the hub tells its operators what is working and what is not.

- ``metrics``: an in-process recorder (per-minute buckets: counts, errors, latency samples) and
  the Prometheus registry behind ``/metrics``.
- ``message_log``: every inbound and outbound exchange, with bounded retention.
- ``health``: the health model of each connector, subscription and worker (``health_snapshot``).
- ``alerts``: rules evaluated periodically, kept with when they began and ended, sent by webhook.
- ``service``: ``start_monitoring`` runs the sampler, the alert evaluator and retention.
"""
