"""Rate limits per credential and per client address, counted in the hub's database.

``flask_limits`` installs them on the API (429 with ``Retry-After``); ``clients`` says whom a
request counts against; ``storage`` is the ``limits`` storage over the hub's database;
``tables`` its counters. Settings: ``[srhub.rate_limits]`` (hub/settings/rate_limits.py).
"""
