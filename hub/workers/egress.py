"""Where the hub may send a request: the guard against server-side request forgery (SSRF).

Programs choose where their webhooks and DCI notifications go, DCI senders name their callback
URLs, operators name an alert hook. Without a guard any of them could make the hub POST to
``127.0.0.1:5432``, to a cloud metadata service (``169.254.169.254``) or to a machine on the
office network, and read the delivery log as a port scanner. So every outbound URL is vetted:

- only ``http`` / ``https``, a host, no user-info (``user@host`` hides the real host from a
  reader), a port that is a number;
- a host written as a number in any form other than the plain dotted quad or an IPv6
  address (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``) is refused outright:
  no partner needs it, and it is how allow-lists are fooled;
- the host is resolved, and *every* address it resolves to must be public: not loopback,
  private, link-local, multicast, reserved, unspecified or shared (carrier NAT); IPv4 hidden in
  IPv6 (``::ffff:127.0.0.1``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) is judged by the IPv4
  address inside. A name that does not resolve is refused too;
- an operator may allow a host explicitly (``[srhub.outbound] allow_hosts``, ``host`` or
  ``host:port``), for partners on a private network and for the sandbox on loopback. The
  entry must be written as the URL writes the host: allowing ``127.0.0.1`` does not allow
  ``localhost`` or ``2130706433``.

The check runs when the URL is registered (a clear 422 for the creator) and again before every
request, because DNS can answer differently a second later (DNS rebinding). At send time the
connection is *pinned* to the address that was checked (``PinnedAdapter``): the socket connects
to that address while the Host header, TLS SNI and certificate check still use the name, so a
second lookup between the check and the connect cannot swap the address. Proxies from the
environment are ignored for the same reason (a proxy would resolve the name itself).
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from hub.settings.outbound import HOST_CHARS as _HOST_CHARS
from hub.settings.outbound import normalise_host as _normalise_host
from hub.settings.outbound import parse_allow_entry as _parse_allow_entry

if TYPE_CHECKING:
    from hub.settings import Settings

#: What a delivery log says of a refused destination: the same words for every reason, so the
#: log cannot be used to learn which internal hosts or ports exist.
REFUSED_ERROR = "refused: destination not permitted (see docs/security.md)"

Resolver = Callable[[str, int], list[str]]
AnyAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not globally reachable
_DOTTED_QUAD = re.compile(
    r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$"
)
# A host name whose last label is numeric (or hex) is not a DNS name: resolvers read it as a
# number in one of inet_aton's forms (2130706433, 0x7f000001, 0177.1, 127.1).
_NUMERIC_LAST_LABEL = re.compile(r"(^|\.)(0x[0-9a-f]*|\d+)\.?$")


class EgressRefused(ValueError):
    """The URL may not be called; ``reason`` is for the person who registered it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_public_address(address: AnyAddress) -> bool:
    """True when ``address`` is on the public internet (see the module docstring)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return False
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP), as text; OSError when it does not resolve."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


@dataclass(frozen=True)
class Target:
    """A vetted destination: connect to ``address`` (None: an operator allowed the host,
    resolve it as usual) while speaking to ``host`` by name."""

    url: str
    host: str
    port: int
    address: str | None


@dataclass(frozen=True)
class EgressPolicy:
    """The outbound rule of one hub: deny every non-public destination unless allowed."""

    allow_hosts: frozenset[str] = frozenset()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        return cls(frozenset(settings.outbound.allow_hosts))

    def allowed(self, host: str, port: int) -> bool:
        """Whether an operator allowed ``host`` (on any port, or on ``port``)."""
        for entry in self.allow_hosts:
            allowed_host, allowed_port = _parse_allow_entry(entry)
            if allowed_host == host and allowed_port in (None, port):
                return True
        return False

    def vet(self, url: str) -> Target:
        """The destination of ``url`` when the hub may call it; ``EgressRefused`` otherwise."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https"):
            raise EgressRefused("the URL must be an http(s) URL (http:// or https://)")
        if "@" in parts.netloc:
            raise EgressRefused("the URL must not carry a user name or password")
        raw_host = parts.hostname or ""
        host = _normalise_host(raw_host)
        if not host or not _HOST_CHARS.match(host):
            raise EgressRefused("the URL must name a host (a DNS name or an IP address)")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise EgressRefused("the URL's port must be a number from 1 to 65535") from None
        if self.allowed(host, port):
            return Target(url, host, port, None)
        literal = self._literal(host)
        if literal is not None:
            if not is_public_address(literal):
                raise EgressRefused(
                    "the URL points to a loopback, private, link-local or otherwise "
                    "non-public address; an operator must allow the host explicitly"
                )
            return Target(url, host, port, str(literal))
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise EgressRefused(f"the host {host[:100]!r} does not resolve to any address")
        for text in addresses:
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise EgressRefused(
                    f"the host {host[:100]!r} resolves to no usable address"
                ) from None
            if not is_public_address(address):
                raise EgressRefused(
                    f"the host {host[:100]!r} resolves to a loopback, private, link-local or "
                    "otherwise non-public address; an operator must allow it explicitly"
                )
        return Target(url, host, port, addresses[0])

    @staticmethod
    def _literal(host: str) -> AnyAddress | None:
        """The address a host written as an IP literal stands for; ``EgressRefused`` for a
        number in any form but the plain dotted quad or IPv6."""
        if ":" in host:
            try:
                return ipaddress.IPv6Address(host.split("%", 1)[0])
            except ValueError:
                raise EgressRefused("the URL's IPv6 address is not valid") from None
        if _DOTTED_QUAD.match(host):
            return ipaddress.IPv4Address(host)
        if _NUMERIC_LAST_LABEL.search(host):
            raise EgressRefused(
                "write the host as a DNS name or a plain dotted-quad address "
                "(numbers in decimal, octal or hex forms are refused)"
            )
        return None

    def session(self) -> requests.Session:
        """A session that connects only to addresses vetted by ``pinned`` (see ``post``)."""
        session = requests.Session()
        session.trust_env = False  # a proxy would resolve the name again, unchecked
        adapter = PinnedAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def post(self, session: requests.Session, url: str, **kwargs: Any) -> requests.Response:
        """Vet ``url`` now and POST to it through ``session`` (from ``session()``), connected
        to the address just vetted. ``EgressRefused`` before any connection is made."""
        target = self.vet(url)
        with pinned(target):
            return session.post(url, allow_redirects=False, **kwargs)


# -- connections pinned to a vetted address ---------------------------------------------------

_PIN: contextvars.ContextVar[Target | None] = contextvars.ContextVar(
    "srhub_egress_pin", default=None
)


@contextmanager
def pinned(target: Target) -> Iterator[None]:
    """New connections made inside go to ``target.address`` (only for ``target.host``)."""
    token = _PIN.set(target)
    try:
        yield
    finally:
        _PIN.reset(token)


class _PinnedConnectionMixin:
    """Connects the socket to the vetted address; the name stays for Host, SNI and the
    certificate. A connection outside ``pinned`` (or for another host) is refused."""

    _dns_host: str
    host: str
    port: int

    def _new_conn(self) -> socket.socket:
        pin = _PIN.get()
        if pin is None or pin.host != _normalise_host(self.host) or pin.port != self.port:
            raise NewConnectionError(self, REFUSED_ERROR)  # type: ignore[arg-type]
        if pin.address is None:
            return super()._new_conn()  # type: ignore[misc]
        name = self._dns_host
        self._dns_host = pin.address
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = name


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """A requests adapter whose connections go only where ``pinned`` says."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PinnedHTTPPool,
            "https": _PinnedHTTPSPool,
        }
