"""The civil-registry connector: an OpenCRVS-like registry that pushes, can be pulled, and
speaks DCI.

Three ways in, one rule: what the registry sends is published raw to ``sr.inbound`` before
anything else happens, and the registry (or our checkpoint) is told "done" only afterwards.

- **push** (``blueprint``): OpenCRVS webhook deliveries of ``BIRTH_REGISTERED`` /
  ``DEATH_REGISTERED`` after ``subscribe(callback_url)`` (one subscription per topic, made with
  a system client's token; ``websub_client``); DCI ``notify`` after ``dci_subscribe(...)``.
- **pull** (``poll``): the ``/feed`` of registered events, resumed from the saved cursor; the
  way to fill gaps (events registered before a subscription, deliveries the registry gave up).
- **DCI client** (``self.dci``): searches by identifier or date, synchronous or with the answer
  coming back to the ``on-search`` view. Requests are signed with the hub's key (from the
  context); a subscription the registry never confirms keeps the connector degraded.

All registry calls share this connector's resilience (timeout, retry, breaker, rate limit).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from flask import Blueprint

from connectors.base import (
    ConnectorContext,
    PartnerHttpClient,
    PollResult,
    PullConnector,
    PushConnector,
    RecordType,
    SettingsError,
)
from connectors.base.errors import PartnerProtocolError
from connectors.base.webhooks import OPENCRVS, verify_signature
from connectors.civil_registry import dci_messages, feed
from connectors.civil_registry.dci_client import DciClient
from connectors.civil_registry.dci_inbox import DciInbox
from connectors.civil_registry.opencrvs_auth import SystemToken
from connectors.civil_registry.rejections import RejectionLog
from connectors.civil_registry.settings import (
    SETTINGS_SCHEMA,
    check_opencrvs_websub,
    endpoints,
    secret_or_generated,
    split_url,
    token_path_url,
)
from connectors.civil_registry.views import build_blueprint
from connectors.civil_registry.websub import SubscriptionBook, value_at
from connectors.civil_registry.websub_client import WebSubSubscriber
from standards.dci.signature import load_public_key

WEBHOOK_PATH = "/webhook"
# A registry retries a notify for a while; its message_ts stays that of the first attempt.
DCI_MAX_AGE = timedelta(days=1)


class CivilRegistryConnector(PullConnector, PushConnector):
    name: ClassVar[str] = "civil_registry"
    kind: ClassVar[str] = "civil_registry"
    settings_schema: ClassVar[dict[str, Any]] = SETTINGS_SCHEMA
    # OpenCRVS deliveries and feed entries carry a FHIR Bundle; DCI records are JSON as sent.
    record_types: ClassVar[Mapping[str, RecordType]] = {
        "birth": RecordType("civil_registry_birth", "fhir_bundle", "birth", "child"),
        "death": RecordType("civil_registry_death", "fhir_bundle", "death", "deceased"),
        "dci_birth": RecordType("civil_registry_dci_birth", "json", "birth", "child"),
        "dci_death": RecordType("civil_registry_dci_death", "json", "death", "deceased"),
    }

    def __init__(self, settings: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(settings, context)
        check_opencrvs_websub(context.name, self.settings)
        self.endpoints = endpoints(context.name, self.settings)
        self.feed_enabled = bool(self.settings["feed"])
        hooks_base, self._webhooks_path = split_url(self.endpoints.webhooks_url)
        self._hooks = self.http(hooks_base)
        self._feed, self._feed_path = self._hooks, ""
        if self.feed_enabled:
            feed_base, self._feed_path = split_url(self.endpoints.feed_url)
            self._feed = self._hooks if feed_base == hooks_base else self.http(feed_base)
        token = self.settings.get("dci_bearer_token")
        self.dci = DciClient(
            self.http(
                self.endpoints.dci_base_url + "/",
                headers={"Authorization": f"Bearer {token}"} if token else None,
            ),
            sender_id=self.settings["sender_id"],
            receiver_id=self.settings.get("registry_id"),
            clock=context.clock,
            pending_ttl=float(self.settings["pending_ttl_seconds"]),
            signing_key=context.signing_key,
            registry_key=self._registry_key(context.name),
            locale=self.settings["dci_locale"],
            reg_type=self.settings["dci_registry_type"],
            record_type=self.settings["dci_record_type"],
            status=self.status,
        )
        self.dci_max_age = DCI_MAX_AGE
        if self.settings["signature_scheme"] == OPENCRVS:
            # OpenCRVS issues the secret; one made up here could never match (and with WebSub
            # on, check_opencrvs_websub already refused its absence).
            self.webhook_secret = str(self.settings.get("webhook_secret") or "")
            secret_generated = False
        else:
            self.webhook_secret, secret_generated = secret_or_generated(
                self.settings, "webhook_secret"
            )
        self.callback_token, token_generated = secret_or_generated(
            self.settings, "dci_callback_token"
        )
        self.generated_secrets = [
            key
            for key, generated in (
                ("webhook_secret", secret_generated),
                ("dci_callback_token", token_generated),
            )
            if generated
        ]
        if self.generated_secrets:
            self.log.warning(
                "%s: %s not configured; generated for this process only (subscriptions made "
                "now stop verifying after a restart)",
                context.name,
                " and ".join(self.generated_secrets),
            )
        self.topics = frozenset(self.settings["webhook_topics"])
        self.signature_scheme: str = self.settings["signature_scheme"]
        self.signature_algorithms = tuple(self.settings["signature_algorithms"])
        self.subscriptions = SubscriptionBook(
            context.clock, float(self.settings["pending_ttl_seconds"])
        )
        self.system_token: SystemToken | None = None
        self._auth: PartnerHttpClient | None = None
        if self.settings.get("client_id") and self.settings.get("client_secret"):
            auth_url = self.settings.get("auth_url")
            if not auth_url:
                raise SettingsError(
                    context.name, ["$.auth_url: is required when client_id is given"]
                )
            auth_base, auth_path = split_url(token_path_url(str(auth_url)))
            auth = self._auth = self.http(auth_base)
            self.system_token = SystemToken(
                auth,
                auth_path,
                str(self.settings["client_id"]),
                str(self.settings["client_secret"]),
                context.clock,
            )
        self.websub = WebSubSubscriber(
            http=self._hooks,
            path=self._webhooks_path,
            scheme=self.signature_scheme,
            secret=self.webhook_secret,
            token=self.system_token,
            book=self.subscriptions,
            status=self.status,
            clock=context.clock,
            log=self.log,
            confirm_within=float(self.settings["pending_ttl_seconds"]),
            retry_initial=float(self.settings["resubscribe_initial_seconds"]),
            retry_max=float(self.settings["resubscribe_max_seconds"]),
        )
        self.rejections = RejectionLog(self.status, context.clock, self.log)
        self.inbox = DciInbox(context, self.dci, self.rejections)

    # --- pull: the feed ------------------------------------------------------------------------

    def poll(self, checkpoint: Any | None) -> PollResult:
        """One feed page after ``checkpoint`` (the feed's opaque cursor); nothing with
        ``feed = false``."""
        if not self.feed_enabled:
            return PollResult([], checkpoint, False)
        cursor = str(checkpoint) if checkpoint else None
        params: dict[str, Any] = {"limit": int(self.settings["feed_page_size"])}
        if cursor:
            params["since"] = cursor
        operation = "GET feed"
        response = self._feed.get(self._feed_path, params=params, operation=operation)
        try:
            body = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise PartnerProtocolError(
                self.partner, operation, "bad_page", "the page is not valid JSON; not advancing"
            ) from None
        try:
            page = feed.parse_page(body, cursor)
        except feed.FeedPageError as error:
            raise PartnerProtocolError(
                self.partner, operation, "bad_page", f"{error}; not advancing"
            ) from None
        for rejection in page.rejected:
            self.rejections.add(rejection)
        return PollResult(page.records, page.next_cursor, page.has_more)

    # --- push: WebSub --------------------------------------------------------------------------

    def blueprint(self) -> Blueprint:
        return build_blueprint(self)

    def callback_base(self, given: str | None = None) -> str:
        base = given or self.settings.get("callback_base_url")
        if not base:
            raise ValueError(
                "the hub's public URL of this connector is needed: pass it or set "
                "callback_base_url (e.g. https://hub.example/connectors/civil_registry)"
            )
        return str(base).rstrip("/")

    def subscribe(self, callback_url: str | None = None) -> dict[str, str]:
        """Subscribe to the registry by every way configured in ``subscriptions``.

        ``callback_url`` is where the hub mounted this connector (``<hub>/connectors/<name>``,
        what the hub's connector host passes; default ``callback_base_url``) or, for WebSub
        only, the full ``.../webhook`` URL. Returns topic -> the subscription's state
        (``active``, ``refused``, ``failed``, ``awaiting_confirmation``; each also in the
        status, with its reason), plus ``"dci"`` -> the correlation id of the DCI subscribe
        when that is configured."""
        given = (callback_url or self.callback_base()).rstrip("/")
        base = given.removesuffix(WEBHOOK_PATH)
        outcome: dict[str, str] = {}
        if "websub" in self.settings["subscriptions"]:
            outcome.update(self.websub_subscribe(base + WEBHOOK_PATH))
        if "dci" in self.settings["subscriptions"]:
            outcome["dci"] = self.dci_subscribe(base)
        return outcome

    def websub_subscribe(self, callback: str) -> dict[str, str]:
        """Ask the registry to deliver each configured topic to ``callback`` (our ``/webhook``
        view), each topic on its own; returns topic -> state. A topic the registry could not
        be asked about is tried again in the background; a refusal waits for an operator."""
        return self.websub.subscribe(callback, self.topics)

    def verify_signature(
        self, body: bytes, header: str | None, now: datetime | None = None
    ) -> bool:
        """The delivery is signed with our secret, or, while the registry rotates it, with the
        previous one (``previous_webhook_secret`` until ``previous_webhook_secret_until``)."""
        secrets_now = [self.webhook_secret]
        previous = str(self.settings.get("previous_webhook_secret") or "")
        until_text = str(self.settings.get("previous_webhook_secret_until") or "")
        if previous and until_text:
            until = datetime.fromisoformat(until_text.replace("Z", "+00:00"))
            if (now or datetime.now(UTC)) < until:
                secrets_now.append(previous)
        return any(
            verify_signature(
                self.signature_scheme,
                secret.encode("utf-8"),
                body,
                header,
                self.signature_algorithms,
            )
            for secret in secrets_now
        )

    def challenge_answered(self, topic: str) -> None:
        self.websub.challenge_answered(topic)

    @staticmethod
    def delivery_headers(topic: str, bundle_path: str, webhook_id: str | None) -> dict[str, str]:
        headers = {"origin": "webhook", "topic": topic, feed.BUNDLE_PATH_HEADER: bundle_path}
        if webhook_id:
            headers["webhook_id"] = webhook_id
        return headers

    # --- push: DCI -----------------------------------------------------------------------------

    def _registry_key(self, name: str) -> Any:
        """The registry's public key from ``registry_public_key``, or None when not set."""
        text = self.settings.get("registry_public_key")
        if not text:
            return None
        try:
            return load_public_key(text)
        except ValueError as error:  # the reason only: a key is not secret, but keep it short
            raise SettingsError(name, [f"$.registry_public_key: {error}"]) from None

    def dci_sender_uri(self, action: str, callback_base_url: str | None = None) -> str:
        """The full URL the registry calls for ``action`` (``on-search``, ``on-subscribe``,
        ``on-unsubscribe``, ``notify``): ``<base>/dci/<token>/<action>``, used as given, as in
        the spec's example. The token in the path is what authenticates those calls."""
        return f"{self.callback_base(callback_base_url)}/dci/{self.callback_token}/{action}"

    def dci_subscribe_filter(self) -> Any:
        """``subscribe_criteria.filter``: the configured one, else every event registered from
        today on (the registry's notion of "new")."""
        configured = self.settings.get("dci_subscribe_filter")
        if configured:
            return configured
        return dci_messages.registered_since(self.context.clock.now().date())

    def dci_subscribe(self, callback_base_url: str | None = None) -> str:
        """Subscribe to the configured DCI event types; returns the correlation id. The
        on-subscribe must reach us within ``pending_ttl_seconds``, or health says so."""
        return self.dci.subscribe(
            self.settings["dci_event_types"],
            sender_uri=self.dci_sender_uri("on-subscribe", callback_base_url),
            filter=self.dci_subscribe_filter(),
            filter_type=self.settings.get("dci_filter_type"),
        )

    def close(self) -> None:
        self.websub.close()
        clients = [self._feed, self._hooks, self.dci.http]
        if self._auth is not None:
            clients.append(self._auth)
        for client in {id(c): c for c in clients}.values():
            client.session.close()

    # --- the operator's view -------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["websub"] = {
            **self.subscriptions.snapshot(),
            "signature_scheme": self.signature_scheme,
            "retrying": self.websub.waiting_retries(),
        }
        info["dci"] = self.inbox.snapshot()
        info["recent_rejections"] = self.rejections.recent()
        info["generated_secrets"] = list(self.generated_secrets)
        return info


def bundle_of(payload: Mapping[str, Any], bundle_path: str | None = None) -> Any:
    """The FHIR Bundle inside a published ``birth`` / ``death`` payload, whichever way it came:
    a webhook delivery (``event.context[<n>]``, the ``bundle_path`` header says which) or a feed
    entry (``bundle``). None when absent; for the ingest side, which maps the Bundle."""
    if bundle_path:
        return value_at(payload, bundle_path)
    if "bundle" in payload:
        return payload.get("bundle")
    return value_at(payload, "event.context[0]")
