"""One settings object for the whole hub (``Settings``, read by ``load_settings``).

Defaults give the embedded setup; a TOML file and ``SRHUB_*`` environment variables override
them (``hub.settings.model``). Each component's settings are a typed, checked section of their
own module here (``monitoring``, ``dci``, ``notifications``, ``sandbox``, ``ui``). Secrets
that are not given are generated once and kept in a local key file (``hub.settings.keys``),
so a fresh checkout works without any configuration while a production deployment passes its
keys explicitly. The package imports nothing else of the hub: every part may import it.
"""

from hub.settings.base import ENV_PREFIX, SettingsError
from hub.settings.dci import DciSettings
from hub.settings.keys import Keys, identifier_cipher, load_keys
from hub.settings.model import (
    Settings,
    load_identifier_profile,
    load_person_matcher,
    load_settings,
    with_overrides,
)
from hub.settings.monitoring import MonitoringSettings
from hub.settings.notifications import NotificationSettings
from hub.settings.sandbox import SandboxMockSettings
from hub.settings.ui import UiSettings

__all__ = [
    "ENV_PREFIX",
    "DciSettings",
    "Keys",
    "MonitoringSettings",
    "NotificationSettings",
    "SandboxMockSettings",
    "Settings",
    "SettingsError",
    "UiSettings",
    "identifier_cipher",
    "load_identifier_profile",
    "load_keys",
    "load_person_matcher",
    "load_settings",
    "with_overrides",
]
