"""Bulk loads: a registry's first load from a partner export and large partner extracts.

``srhub import`` streams a file (CSV or JSON lines) through a mapping spec in batches; each
batch is matched against the registry with one identifier look-up and written set-based
(``Registry.load_households``, ``Registry.record_facts_bulk``) in one transaction together
with the import's checkpoint, so a rerun continues after the last committed line. Bad rows go
to a rejects file (line, reason; never the values) and never stop the good ones.

Parts: ``reading`` (rows of a file), ``checkpoint`` (where a load stands), ``rejects``,
``households`` and ``income`` (what a batch becomes), ``runner`` (the loop), ``progress``.
"""

from hub.bulk.runner import ImportOptions, ImportSummary, run_import

__all__ = ["ImportOptions", "ImportSummary", "run_import"]
