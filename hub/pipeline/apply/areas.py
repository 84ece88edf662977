"""Admin areas (``admin_area``): an area's outline, level, name, parent and layer values, as
the GIS connector's layer refresh publishes them (``gis.admin_area``, mapping spec
``gis_admin_area``), kept in ``admin_areas`` for maps. No household changes."""

from __future__ import annotations

from typing import Any

from hub.pipeline.apply.common import IngestContext, source
from registry_core.service import Registry


def apply_admin_area(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """Store the area (a redelivered or unchanged one changes nothing)."""
    changed = registry.record_admin_area(record, source(ctx, ctx.source_id))
    return "applied" if changed else "already_applied"
