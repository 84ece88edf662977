"""Settings of the GIS mock."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox_mocks.common.faults import FaultConfig

DEFAULT_PORT = 8104


@dataclass
class GisConfig:
    """The seed picks the country (same seed as the other mocks: same areas)."""

    seed: int = 42
    regions: int = 4
    districts_per_region: int = 4
    localities_per_district: int = 5
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    faults: FaultConfig | None = None
