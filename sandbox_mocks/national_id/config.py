"""Settings of the national ID authority mock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sandbox_mocks.common.faults import FaultConfig

DEFAULT_PORT = 8101


@dataclass
class NationalIdConfig:
    """What the mock serves and whom it lets in.

    ``events_days``: deaths registered in that many days after the census date are known to the
    authority (those people answer ``DECEASED``). ``noise_rate``: share of records the authority
    holds with a data-entry error (typo, swapped names, ...), as a real registry would.
    The credentials are sandbox defaults, not secrets; deployments pass their own.
    ``identifier_profile``: the country profile (TOML) whose ``national_id`` and ``virtual_id``
    rules decide which numbers are well-formed; default: the sandbox's own profile.
    """

    seed: int = 42
    people: int = 2000
    events_days: int = 365
    noise_rate: float = 0.03
    username: str = "hub-client"
    password: str = "sandbox-password"  # noqa: S105 - sandbox default, overridden in config
    token_secret: str = "sandbox-token-key"  # noqa: S105 - derives per-partner person tokens
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    public_url: str | None = None  # address written into the WSDL; default: the request's host
    faults: FaultConfig | None = None
    identifier_profile: Path | None = None
