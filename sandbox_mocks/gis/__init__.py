"""Sandbox GIS service: the fictional country's admin areas, point look-up and risk layers.

``create_app(GisConfig(...))`` builds the Flask app; ``python -m sandbox_mocks.gis`` serves it on
port 8104. Routes are listed in ``sandbox_mocks.gis.app``.
"""

from sandbox_mocks.gis.app import PREFIX, create_app
from sandbox_mocks.gis.config import GisConfig

__all__ = ["PREFIX", "GisConfig", "create_app"]
