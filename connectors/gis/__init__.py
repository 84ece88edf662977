"""GIS connector: point -> admin area chain (look-up) and per-locality risk layers (pull).

Publishes ``gis.location`` (a household's look-up answer) and ``gis.area_layers`` (one per
locality); both map with the ``gis_area`` spec.
"""

from connectors.gis.connector import AREA_LAYERS, LOCATION, GisConnector

__all__ = ["AREA_LAYERS", "LOCATION", "GisConnector"]
