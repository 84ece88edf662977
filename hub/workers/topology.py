"""The queues the workers consume, with the bindings that feed them.

Every worker declares the whole topology when it connects, so whichever process starts first
creates it and a message published by the relay always has a queue to land in (publishing is
``mandatory``: an event that matched no queue would be refused, not silently dropped).
"""

from __future__ import annotations

from hub.broker.base import EXCHANGE_EVENTS, EXCHANGE_INBOUND, QUEUE_INGEST, QueueSpec

QUEUE_DISPATCH = "sr.dispatch"
QUEUE_CROSSCHECK = "sr.crosscheck"
# What the crosscheck worker reads (hub.crosscheck): registrations, identity-check consents,
# and the verification results it keeps for the household record.
CROSSCHECK_EVENTS = (
    "household.created",
    "household.member_added",
    "household.updated",
    "consent.granted",
    "person.verified",
    "person.verification_failed",
)

QUEUE_SCORING = "sr.scoring"
# What the scoring worker reads (hub.scoring): the household events after which its scores
# and eligibility may change. Never its own household.eligibility_changed.
SCORING_EVENTS = (
    "household.created",
    "household.updated",
    "household.member_added",
    "household.member_removed",
)

INGEST_QUEUE = QueueSpec(name=QUEUE_INGEST, bindings=[(EXCHANGE_INBOUND, "#")])
DISPATCH_QUEUE = QueueSpec(name=QUEUE_DISPATCH, bindings=[(EXCHANGE_EVENTS, "#")])

CROSSCHECK_QUEUE = QueueSpec(
    name=QUEUE_CROSSCHECK, bindings=[(EXCHANGE_EVENTS, key) for key in CROSSCHECK_EVENTS]
)

QUEUE_QUALITY = "sr.quality"
# What the quality worker reads (hub.quality): every household and person change, whose
# subjects it re-checks for data-quality issues.
QUALITY_EVENTS = ("household.#", "person.#")
QUALITY_QUEUE = QueueSpec(
    name=QUEUE_QUALITY, bindings=[(EXCHANGE_EVENTS, key) for key in QUALITY_EVENTS]
)
SCORING_QUEUE = QueueSpec(
    name=QUEUE_SCORING, bindings=[(EXCHANGE_EVENTS, key) for key in SCORING_EVENTS]
)

WORKER_QUEUES: tuple[QueueSpec, ...] = (
    INGEST_QUEUE,
    DISPATCH_QUEUE,
    CROSSCHECK_QUEUE,
    QUALITY_QUEUE,
    SCORING_QUEUE,
)
