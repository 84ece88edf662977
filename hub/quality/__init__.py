"""Data quality: anomaly checks on change and as a scan, and the issues they keep.

``rules`` (one pure function per kind of issue), ``facts`` (what the rules read, loaded in
bulk), ``checks`` (rules + reconciliation for chosen subjects), ``service`` (the issue table:
reconcile, people's actions, lists, summary, ``issues_for_household``), ``scan`` (the full
scan in batches), ``handlers`` (the worker on ``sr.quality``). See docs/data-quality.md.
"""
