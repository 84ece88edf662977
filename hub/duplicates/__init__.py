"""Registry-wide duplicate detection: the scan job over stored blocking keys (``scan``), the
thread that runs queued scans (``runner``) and its table (``tables``). Candidate pairs land in
the registry's match review queue (``registry_core.resolution.open_duplicate_review``), where
staff merge them or keep them apart (``registry_core.services.merges``)."""
