"""Tax authority mock: income extracts dropped as CSV/XML files with manifests, plus a status API.

Files land in the drop folder as ``income_<year>_<seq>.<csv|xml>``, each followed by
``<file>.sha256`` and, last, ``income_<year>_<seq>.manifest.json``: wait for the manifest.
"""

from sandbox_mocks.tax.app import TaxAuthorityConfig, create_app, drop_folder_of
from sandbox_mocks.tax.drops import DropRequest, TaxDropFolder
from sandbox_mocks.tax.injection import BAD_ROW_KINDS, FILE_FAULTS, InjectionMix

__all__ = [
    "BAD_ROW_KINDS",
    "FILE_FAULTS",
    "DropRequest",
    "InjectionMix",
    "TaxAuthorityConfig",
    "TaxDropFolder",
    "create_app",
    "drop_folder_of",
]
