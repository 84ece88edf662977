"""The registry's use cases, one module each, over one shared base (``base``).

``registry_core.service.Registry`` is the one entry point callers use; it hands each call to
the use case that owns it. See ``docs/architecture.md`` ("Registry core") for the map.
"""
