"""Settings of the hub's outbound requests (``settings.outbound``): which hosts an operator
allows although they are not on the public internet.

Webhooks, DCI notifications and callbacks and the alert hook are refused when their host is
loopback, private, link-local or otherwise non-public (``hub.workers.egress``), unless listed
here as ``host`` (any port) or ``host:port``, written as the URLs write it. Example:
``SRHUB_OUTBOUND__ALLOW_HOSTS=mis.internal:8443,10.2.0.15``. ``srhub run`` with the sandbox
adds the sandbox partners' ``127.0.0.1:<port>`` by itself. Described in docs/security.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section, SettingsError

#: Every character a DNS name or an IP literal may hold; a host with anything else is refused.
HOST_CHARS = re.compile(r"^[a-z0-9._:-]+$")


def normalise_host(raw: str) -> str:
    """A host as compared: lower case, no trailing dot."""
    return raw.strip().lower().rstrip(".")


def parse_allow_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port`` or ``[v6]:port`` as (host, port or None); ValueError when the
    port is not a number."""
    text = entry.strip().lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
        return normalise_host(host), int(port) if port else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return normalise_host(host), int(port)
    return normalise_host(text), None


@dataclass(frozen=True)
class OutboundSettings(Section):
    """Hosts exempt from the outbound address check (empty: none, the safe default)."""

    name: ClassVar[str] = "outbound"

    allow_hosts: tuple[str, ...] = ()

    def check(self, label: Callable[[str], str]) -> None:
        problems: list[str] = []
        for entry in self.allow_hosts:
            try:
                host, port = parse_allow_entry(entry)
            except ValueError:
                problems.append(f"{entry!r}: the port must be a number")
                continue
            if not host or not HOST_CHARS.match(host) or not 0 < (port or 1) < 65536:
                problems.append(f"{entry!r} is not a host or host:port")
        if problems:
            raise SettingsError(f"{label('allow_hosts')}: " + "; ".join(problems))
