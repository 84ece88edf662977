"""Policy: proxy-means-test scoring models and program eligibility rules (docs/policy.md).

``definitions`` (what an administrator uploads, checked), ``expressions`` (CEL, sandboxed),
``evaluate`` (a score and a decision in Python), ``facts`` (one household's variables),
``sql`` (the set-based re-score), ``eligibility`` (decisions and their events), ``service``
(the use case behind ``Registry.scoring``), ``tables``.
"""
