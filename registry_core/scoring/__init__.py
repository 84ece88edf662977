"""Policy: proxy-means-test scoring models and program eligibility rules (docs/policy.md).

``definitions`` (what an administrator uploads, checked), ``expressions`` (CEL, sandboxed),
``evaluate`` (a score and a decision in Python), ``facts`` (one household's variables),
``sql`` (the set-based re-score statement), ``active`` (the active versions, parsed once),
``rescore`` (writing scores), ``eligibility`` (decisions and their events), ``external``
(scores recorded from outside), ``views`` (what the API shows), ``service`` (the use case
behind ``Registry.scoring``), ``tables``.
"""
