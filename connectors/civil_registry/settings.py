"""Settings of the civil-registry connector and where each of the registry's services lives.

The schema accepts the ``[connectors.civil_registry]`` table the sandbox launcher writes as is
(``url``, ``base_url``, ``fhir_feed_url``, ``webhooks_url``, ``dci_base_url``,
``dci_bearer_token``, ``registry_id``), so ``srhub run`` can hand it over without editing.
Everything the launcher cannot know (our own public callback URL, the token that guards our
DCI callback views) has a key of its own.

OpenCRVS (``signature_scheme = "opencrvs"``, the default) decides the WebSub secret itself: it
is the signing ("sha") secret it issued to the system client whose credentials
(``client_id``, ``client_secret``) get the token for the subscribe call from its auth service
(``auth_url``). Those four are required there when WebSub is used, and nothing is generated in
their place: a made-up secret would only be refused ("hub.secret is incorrect"). With
``plain-hmac`` (other WebSub hubs) a missing secret is generated per process, which works
until a restart (see docs/connectors.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import SettingsError, connector_settings_schema
from connectors.base.webhooks import OPENCRVS, SIGNATURE_ALGORITHMS, SIGNATURE_SCHEMES

BIRTH_TOPIC = "BIRTH_REGISTERED"
DEATH_TOPIC = "DEATH_REGISTERED"
# WebSub topic -> record type (the routing key's last word and the mapping spec's suffix).
RECORD_TYPE_BY_TOPIC: dict[str, str] = {BIRTH_TOPIC: "birth", DEATH_TOPIC: "death"}
# DCI reg_event_type -> record type (mapping specs civil_registry_dci_birth / _dci_death).
DCI_RECORD_TYPE_BY_EVENT: dict[str, str] = {"live_birth": "dci_birth", "death": "dci_death"}
# The spec's vital events (registry core ``dci_VitalEvents``) and their names in the
# ``spdci-common:RegistryEventType`` vocabulary the CRVS API's examples use.
SPDCI_EVENT_PREFIX = "spdci-common:RegistryEventType:"
VITAL_EVENTS: dict[str, str] = {
    "live_birth": "LiveBirth",
    "death": "Death",
    "fetal_death": "FetalDeath",
    "marriage": "Marriage",
    "divorce": "Divorce",
    "adoption": "Adoption",
}
DCI_EVENT_TYPES = sorted(
    [*DCI_RECORD_TYPE_BY_EVENT]
    + [SPDCI_EVENT_PREFIX + VITAL_EVENTS[event] for event in DCI_RECORD_TYPE_BY_EVENT]
)

_URL = {"type": "string", "pattern": r"^https?://[^\s]+$", "maxLength": 2000}
_TOKEN = {"type": "string", "pattern": r"^[A-Za-z0-9_.~-]{16,256}$"}

SETTINGS_SCHEMA: dict[str, Any] = connector_settings_schema(
    {
        # --- written by the sandbox launcher ---------------------------------------------------
        "url": _URL,
        "base_url": _URL,
        "fhir_feed_url": _URL,
        "webhooks_url": _URL,
        "dci_base_url": _URL,
        "dci_bearer_token": {"type": "string", "minLength": 1, "maxLength": 4096},
        "registry_id": {"type": "string", "minLength": 1, "maxLength": 200},
        # --- ours ----------------------------------------------------------------------------
        "sender_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "default": "social-registry-hub",
        },
        "callback_base_url": _URL,
        "webhook_secret": {"type": "string", "minLength": 16, "maxLength": 512},
        # While the registry rotates its signing secret: the one before, accepted until
        # ``previous_webhook_secret_until`` (an ISO 8601 time with its offset).
        "previous_webhook_secret": {"type": "string", "minLength": 16, "maxLength": 512},
        "previous_webhook_secret_until": {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$",
        },
        "signature_scheme": {"enum": list(SIGNATURE_SCHEMES), "default": OPENCRVS},
        "signature_algorithms": {
            "type": "array",
            "items": {"enum": list(SIGNATURE_ALGORITHMS)},
            "minItems": 1,
            "uniqueItems": True,
            "default": ["sha256"],
        },
        # OpenCRVS system client (client credentials at its auth service)
        "client_id": {"type": "string", "minLength": 1, "maxLength": 200},
        "client_secret": {"type": "string", "minLength": 1, "maxLength": 4096},
        "auth_url": _URL,
        # a topic that could not be subscribed (partner down) is tried again after this,
        # doubling up to the maximum
        "resubscribe_initial_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 86400,
            "default": 30,
        },
        "resubscribe_max_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 86400,
            "default": 3600,
        },
        "webhook_topics": {
            "type": "array",
            "items": {"enum": [BIRTH_TOPIC, DEATH_TOPIC]},
            "minItems": 1,
            "uniqueItems": True,
            "default": [BIRTH_TOPIC, DEATH_TOPIC],
        },
        "subscriptions": {
            "type": "array",
            "items": {"enum": ["websub", "dci"]},
            "uniqueItems": True,
            "default": ["websub"],
        },
        # --- DCI (docs/connectors.md, "Connect a real DCI civil registry") ------------------
        "dci_event_types": {  # sent as written: the spec's names, or the short codes
            "type": "array",
            "items": {"enum": DCI_EVENT_TYPES},
            "minItems": 1,
            "uniqueItems": True,
            "default": [SPDCI_EVENT_PREFIX + "LiveBirth", SPDCI_EVENT_PREFIX + "Death"],
        },
        # subscribe_criteria.filter; default: registered on or after the day we subscribe
        "dci_subscribe_filter": {"type": ["array", "object"], "minProperties": 1, "minItems": 1},
        "dci_filter_type": {"enum": ["idtype-value", "expression", "predicate"]},
        "dci_locale": {"type": "string", "pattern": "^[a-z]{3}$", "default": "eng"},
        "dci_registry_type": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "default": "ns:org:RegistryType:Civil",
        },
        "dci_record_type": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "default": "spdci-extensions-dci:Person",
        },
        # the registry's ed25519 public key (PEM or Base64 of 32 bytes): its answers and
        # callbacks must then carry a valid signature
        "registry_public_key": {"type": "string", "minLength": 40, "maxLength": 4096},
        "dci_callback_token": _TOKEN,
        "feed_page_size": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
        # false: no feed is polled (OpenCRVS itself has none; the sandbox's registry has one)
        "feed": {"type": "boolean", "default": True},
        # A signed delivery whose (signed) ``timestamp`` is further than this from our clock is
        # refused as a replay (OpenCRVS signs the body, timestamp included); 0: not checked.
        "max_delivery_age_seconds": {
            "type": "integer",
            "minimum": 0,
            "maximum": 7 * 24 * 3600,
            "default": 600,
        },
        "max_body_bytes": {
            "type": "integer",
            "minimum": 1024,
            "maximum": 64 * 1024 * 1024,
            "default": 4 * 1024 * 1024,
        },
        "pending_ttl_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 86400,
            "default": 600,
        },
    }
)


@dataclass(frozen=True)
class Endpoints:
    """Absolute URLs of the registry's services; each may live on its own host."""

    feed_url: str
    webhooks_url: str
    dci_base_url: str


def endpoints(connector: str, settings: Mapping[str, Any]) -> Endpoints:
    """The service URLs from explicit keys, else derived from ``base_url`` / ``url``."""
    base = settings.get("base_url") or settings.get("url")
    base = base.rstrip("/") if isinstance(base, str) else None
    wanted = ["webhooks_url", "dci_base_url"]
    if settings.get("feed", True):
        wanted.insert(0, "fhir_feed_url")
    missing = [key for key in wanted if not settings.get(key) and base is None]
    if missing:
        raise SettingsError(
            connector,
            [f"$.{key}: is required when neither base_url nor url is given" for key in missing],
        )
    return Endpoints(
        feed_url=str(settings.get("fhir_feed_url") or (f"{base}/feed" if base else "")),
        webhooks_url=str(settings.get("webhooks_url") or f"{base}/webhooks"),
        dci_base_url=str(settings.get("dci_base_url") or f"{base}/registry").rstrip("/"),
    )


OPENCRVS_WEBSUB_KEYS = {
    "webhook_secret": "the signing (sha) secret OpenCRVS issued to the system client "
    "(shaSecret in its registration answer)",
    "client_id": "the system client's id",
    "client_secret": "the system client's secret",
    "auth_url": "OpenCRVS's auth service, e.g. https://auth.<domain> (the token is asked at "
    "<auth_url>/token)",
}


def check_opencrvs_websub(connector: str, settings: Mapping[str, Any]) -> None:
    """In the ``opencrvs`` scheme with WebSub on, the four keys OpenCRVS needs are given."""
    if settings.get("signature_scheme", OPENCRVS) != OPENCRVS:
        return
    if "websub" not in settings.get("subscriptions", ["websub"]):
        return
    missing = [
        f'$.{key}: is required with signature_scheme = "opencrvs" and WebSub subscriptions: '
        f"{meaning}"
        for key, meaning in OPENCRVS_WEBSUB_KEYS.items()
        if not settings.get(key)
    ]
    if missing:
        raise SettingsError(connector, missing)


def token_path_url(auth_url: str) -> str:
    """The client-credentials token URL of OpenCRVS's auth service (``POST <auth>/token``)."""
    base = auth_url.rstrip("/")
    return base if base.endswith("/token") else base + "/token"


def secret_or_generated(settings: Mapping[str, Any], key: str) -> tuple[str, bool]:
    """The configured secret, or a fresh random one (and True: it will not survive a restart)."""
    value = settings.get(key)
    if isinstance(value, str) and value:
        return value, False
    return secrets.token_urlsafe(32), True


def split_url(url: str) -> tuple[str, str]:
    """``("http://h/a/", "feed")`` for ``http://h/a/feed``: a client base and the last segment,
    so a partner HTTP client (which resolves paths under its base) can call the URL exactly."""
    head, _, tail = url.rstrip("/").rpartition("/")
    return head + "/", tail
