"""Monitoring: how the hub tells its operators what is working and what is not.

- ``metrics``: an in-process recorder (per-minute buckets: counts, errors, latency samples) and
  the Prometheus registry behind ``/metrics`` (labels ``stage``, ``connector``, ``subscription``).
- ``message_log``: every inbound and outbound exchange, with bounded retention.
- ``middleware``: ``MonitoringMiddleware``, the message log and the metrics fed by the parts
  that exchange messages (the ingest worker's runtime, the connector host's publisher); the
  application hands it to them, they import nothing of monitoring.
- ``health``: the health model of each connector, subscription and worker (``health_snapshot``).
- ``alerts``: rules evaluated periodically, kept with when they began and ended, sent by webhook.
- ``service``: ``monitoring_middleware`` and ``start_monitoring`` (the sampler, the alert
  evaluator and the retention jobs it is given, on a schedule).
"""
