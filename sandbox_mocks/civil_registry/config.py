"""Settings of the civil-registry mock, with defaults that give a working sandbox offline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sandbox_mocks.civil_registry.delivery import RetryPolicy
from sandbox_mocks.common.faults import FaultConfig

DEFAULT_PORT = 8102


@dataclass
class CivilRegistryConfig:
    """``population_*`` pick the synthetic world; the clock starts at ``start_date``.

    ``as_of`` is the census date of that world (default: ``start_date``, so the registry's
    people are the other mocks' people when they use the same date); events are the births and
    deaths registered in ``[start_date, start_date + days)``.

    ``noise_rate``: share of people shown with data-entry errors (typos, swapped names, ...).
    ``messy_rate``: share of bundles carrying real-world FHIR quirks (0 = strictly valid).
    ``rate_days_per_second``: simulated days per real second (0 = time moves only when told).
    ``dci_bearer_token``: when set, DCI calls must carry ``Authorization: Bearer <token>``.
    ``admin_token``: when set, ``/_admin/*`` calls must carry ``X-Mock-Admin-Token``.

    ``system_client_*``: the system client registered at start, as an OpenCRVS administrator
    would (its id, client secret and signing "sha" secret; None: generated, UUIDs as OpenCRVS
    makes them). ``system_client_type`` decides what its webhooks carry: ``WEBHOOK`` clients
    get Bundles cut to ``system_client_permissions`` (event -> section codes), every other
    type whole Bundles. ``system_token_seconds``: life of the tokens ``/auth/token`` issues.
    ``webhook_attempts``: delivery attempts while a subscriber cannot be reached (OpenCRVS: 3).
    """

    population_seed: int = 42
    population_people: int = 2000
    start_date: date = date(2025, 1, 1)
    as_of: date | None = None
    days: int = 365
    messy_rate: float = 0.0
    noise_rate: float = 0.0
    rate_days_per_second: float = 0.0
    registry_id: str = "civil-registry"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    faults: FaultConfig = field(default_factory=FaultConfig)
    dci_bearer_token: str | None = None
    admin_token: str | None = None
    tick_interval_s: float = 0.2
    system_client_name: str = "Social Registry Hub"
    system_client_type: str = "HEALTH"
    system_client_id: str | None = None
    system_client_secret: str | None = None
    system_sha_secret: str | None = None
    system_client_permissions: dict[str, list[str]] = field(default_factory=dict)
    system_token_seconds: int = 600
    webhook_attempts: int = 3
