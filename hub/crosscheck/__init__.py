"""The national ID cross-check that registration triggers (``settings.intake.crosscheck_policy``).

A registration, by the API, a field form or a partner feed, ends as registry events
(``household.created``, ``household.member_added``, ``household.updated``). The crosscheck
worker consumes them from ``sr.events`` and, by policy, consent and what the registry already
knows, publishes ``registry.verification_requested`` to ``sr.inbound``; the ingest worker calls
the national ID authority as for any queued verification (``hub.pipeline.verification``), and
the answer comes back as ``person.verified`` / ``person.verification_failed``, which this
worker also reads to keep each person's last outcome (``tables.IdentityCheck``) for the
household record. Neither the API nor the registry core ever calls a partner.
"""
