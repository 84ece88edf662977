"""What push connectors need from the web layer, without importing the hub.

The hub mounts each push connector's Flask blueprint under ``/connectors/<name>/`` and its
deny-by-default auth closes any view that does not declare who may call it. A webhook from a
partner carries no hub token: it proves itself with its own signature. So its view is declared
*public* to the hub's token check, using the same attribute and value as
``hub.auth.flask_auth`` (``__srhub_access__ = "public"``; a test checks the hub recognises it),
and verifies the signature itself, in constant time, before it parses anything.

Two signature schemes are spoken, both in an ``X-Hub-Signature: <alg>=<hex>`` header:

- ``opencrvs``: what OpenCRVS's webhooks service sends (``packages/webhooks``, its
  ``createRequestSignature``): hex HMAC-<alg>(secret, ``"<alg>:" + encodeURIComponent(body)``),
  where ``body`` is the JSON text it posts and ``encodeURIComponent`` is JavaScript's. The
  body is therefore decoded as UTF-8 and percent-encoded exactly as JavaScript does before the
  HMAC; a body that is not UTF-8 cannot have been signed that way and never verifies.
- ``plain-hmac``: the usual WebSub form, hex HMAC-<alg>(secret, raw body bytes).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection
from typing import Any, TypeVar
from urllib.parse import quote

F = TypeVar("F", bound=Callable[..., Any])

# Must equal hub.auth.flask_auth.ACCESS_ATTRIBUTE / PUBLIC (tests/integration checks it).
ACCESS_ATTRIBUTE = "__srhub_access__"
PUBLIC = "public"
MOUNT_PREFIX = "/connectors/{name}"  # where the hub mounts a push connector's blueprint

OPENCRVS = "opencrvs"
PLAIN_HMAC = "plain-hmac"
SIGNATURE_SCHEMES = (OPENCRVS, PLAIN_HMAC)
SIGNATURE_ALGORITHMS = ("sha256", "sha1")
# The characters JavaScript's encodeURIComponent leaves alone besides ASCII letters and digits.
_URI_COMPONENT_SAFE = "-_.!~*'()"


def mount_prefix(connector: str) -> str:
    """The URL prefix of ``connector``'s webhook views in the hub."""
    return MOUNT_PREFIX.format(name=connector)


def signed_webhook(view: F) -> F:
    """Declare ``view`` open to the hub's token check: it authenticates by signature itself."""
    setattr(view, ACCESS_ATTRIBUTE, PUBLIC)
    return view


def encode_uri_component(text: str) -> str:
    """JavaScript's ``encodeURIComponent``: UTF-8 bytes percent-encoded with upper-case hex,
    except ASCII letters, digits and ``-_.!~*'()``.

    A lone surrogate (which JavaScript refuses with a URIError) raises UnicodeEncodeError."""
    return quote(text, safe=_URI_COMPONENT_SAFE, encoding="utf-8", errors="strict")


def hmac_hex(secret: bytes, message: bytes, algorithm: str = "sha256") -> str:
    if algorithm not in SIGNATURE_ALGORITHMS:
        raise ValueError(f"unsupported signature algorithm {algorithm!r}")
    return hmac.new(secret, message, getattr(hashlib, algorithm)).hexdigest()


def hmac_sha256_hex(secret: bytes, body: bytes) -> str:
    return hmac_hex(secret, body, "sha256")


def opencrvs_signature(secret: bytes, body: bytes, algorithm: str = "sha256") -> str:
    """The ``X-Hub-Signature`` value OpenCRVS sends with ``body`` (UTF-8 JSON text)."""
    message = f"{algorithm}:{encode_uri_component(body.decode('utf-8'))}"
    return f"{algorithm}={hmac_hex(secret, message.encode('ascii'), algorithm)}"


def plain_signature(secret: bytes, body: bytes, algorithm: str = "sha256") -> str:
    """The ``X-Hub-Signature`` value of the plain WebSub scheme: HMAC over the raw bytes."""
    return f"{algorithm}={hmac_hex(secret, body, algorithm)}"


def verify_signature(
    scheme: str,
    secret: bytes,
    body: bytes,
    header: str | None,
    algorithms: Collection[str] = ("sha256",),
) -> bool:
    """True if ``header`` (``<alg>=<hex>``) signs ``body`` under ``scheme`` with ``secret``.

    Only the algorithms in ``algorithms`` are accepted (a downgrade to sha1 must be allowed
    explicitly). An empty secret never verifies: a misconfigured connector must refuse, not
    accept all. The comparison is constant-time."""
    if scheme not in SIGNATURE_SCHEMES:
        raise ValueError(f"unknown signature scheme {scheme!r}; known: {SIGNATURE_SCHEMES}")
    if not secret or not header:
        return False
    algorithm, separator, given = header.strip().partition("=")
    algorithm = algorithm.strip().lower()
    if not separator or algorithm not in algorithms or algorithm not in SIGNATURE_ALGORITHMS:
        return False
    try:
        if scheme == OPENCRVS:
            expected = opencrvs_signature(secret, body, algorithm)
        else:
            expected = plain_signature(secret, body, algorithm)
    except (UnicodeDecodeError, UnicodeEncodeError):
        return False
    offered = f"{algorithm}={given.strip().lower()}"
    return hmac.compare_digest(offered.encode("ascii", "replace"), expected.encode("ascii"))


def verify_hmac_sha256(
    secret: bytes, body: bytes, header: str | None, prefix: str = "sha256="
) -> bool:
    """True if ``header`` is ``<prefix><hex HMAC-SHA256 of body>``; constant-time comparison.

    The plain WebSub scheme with one algorithm, for partners that name their header freely
    (``prefix``). An empty secret never verifies."""
    if not secret or not header:
        return False
    header = header.strip()
    if not header.lower().startswith(prefix):
        return False
    given = header[len(prefix) :].strip().lower()
    expected = hmac_sha256_hex(secret, body)
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii"))
