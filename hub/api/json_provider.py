"""Flask's JSON, strict: NaN and Infinity are not JSON, in either direction of the parser.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity`` by default. A body holding
them reached the registry as a float no database keeps faithfully (SQLite kept it and every
later read was invalid JSON; PostgreSQL refused the statement, a 500). The API's own bodies go
through ``hub.api.requests.json_object``, which names the path of such a value (a 422); this
provider is the floor under any other reader of ``request.get_json``: for it such a body is
simply not JSON (a 400).
"""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider

__all__ = ["StrictJSONProvider", "refuse_constant"]


def refuse_constant(name: str) -> Any:
    """``parse_constant`` for ``json.loads``: NaN, Infinity and -Infinity are refused."""
    raise ValueError(f"{name} is not JSON")


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's default provider, refusing NaN and Infinity when reading."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_constant", refuse_constant)
        return json.loads(s, **kwargs)
