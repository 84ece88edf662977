"""Authentication and authorisation of the hub: tokens, API keys, roles, Flask integration.

Only the role model is imported eagerly: ``hub.dbschema`` imports ``hub.auth.tables`` for the
schema, and workers that never serve HTTP should not pay for importing Flask.
"""

from __future__ import annotations

import importlib
from typing import Any

from hub.auth.roles import GrantError, Principal, Role

__all__ = [
    "GrantError",
    "Principal",
    "Role",
    "current_principal",
    "init_app",
    "public",
    "require_area",
    "require_program",
    "requires",
    "undeclared_endpoints",
]

_LAZY = {
    "current_principal": "hub.auth.flask_auth",
    "init_app": "hub.auth.flask_auth",
    "public": "hub.auth.flask_auth",
    "require_area": "hub.auth.flask_auth",
    "require_program": "hub.auth.flask_auth",
    "requires": "hub.auth.flask_auth",
    "undeclared_endpoints": "hub.auth.flask_auth",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hub.auth' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
