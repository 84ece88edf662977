"""Access to the process's HubRuntime from inside a request."""

from __future__ import annotations

from flask import current_app

from hub.runtime import HubRuntime
from registry_core.service import Registry

EXTENSION_KEY = "srhub_runtime"


def hub_runtime() -> HubRuntime:
    runtime = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(runtime, HubRuntime):
        raise RuntimeError("the app was not built by hub.api.create_app")
    return runtime


def hub_registry() -> Registry:
    return hub_runtime().registry
