"""Small on-demand look-up clients over partner REST APIs (tax authority, GIS), for the prefill.

Each is built from a configured connector's settings and its ``ResilientCaller``, so a look-up
shares the partner's circuit breaker, rate limit and timeouts with that partner's connector,
whoever wrote it.
"""

from connectors.lookups.gis import AreaLookup, AreaNotFound
from connectors.lookups.tax import TaxpayerLookup, TaxpayerNotFound

__all__ = ["AreaLookup", "AreaNotFound", "TaxpayerLookup", "TaxpayerNotFound"]
