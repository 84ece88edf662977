"""Civil registry (OpenCRVS-like FHIR events, WebSub webhooks, DCI CRVS API) connector.

Entry point: ``civil_registry = "connectors.civil_registry:CivilRegistryConnector"``.
See docs/connectors.md, "Civil registry".
"""

from connectors.civil_registry.connector import CivilRegistryConnector, bundle_of
from connectors.civil_registry.dci_client import DciClient, DciRefused
from connectors.civil_registry.dci_messages import SearchResult, date_criteria, id_criteria

__all__ = [
    "CivilRegistryConnector",
    "DciClient",
    "DciRefused",
    "SearchResult",
    "bundle_of",
    "date_criteria",
    "id_criteria",
]
