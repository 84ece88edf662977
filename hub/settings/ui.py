"""Settings of the staff dashboard (``settings.ui``).

Read by ``hub.ui.security``; described in docs/auth.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section


@dataclass(frozen=True)
class UiSettings(Section):
    """The dashboard's session cookie."""

    name: ClassVar[str] = "ui"

    # Send the session cookie over HTTPS only. Turn on whenever the dashboard is served over
    # TLS (directly or behind a proxy); off by default so http://127.0.0.1 works.
    secure_cookies: bool = False
