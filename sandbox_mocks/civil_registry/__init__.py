"""Civil registry (CRVS) mock: FHIR bundles, WebSub webhooks, DCI CRVS API, a pull feed."""

from sandbox_mocks.civil_registry.app import CivilRegistry, create_app, registry_of
from sandbox_mocks.civil_registry.config import DEFAULT_PORT, CivilRegistryConfig

__all__ = ["DEFAULT_PORT", "CivilRegistry", "CivilRegistryConfig", "create_app", "registry_of"]
