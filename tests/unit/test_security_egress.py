"""SSRF through subscriptions (issue 17): outbound URLs are vetted at creation and at send
time, the connection is pinned to the vetted address, and only an operator's explicit
allow-list opens a non-public host."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from hub.settings import SettingsError, load_settings
from hub.subscriptions import service
from hub.workers import egress
from hub.workers.egress import REFUSED_ERROR, EgressPolicy, EgressRefused
from hub.workers.outbound import OutboundSender
from hub.workers.retry import RetryPolicy
from standards.validation import SchemaViolation

# Every way the finding reached the hub itself, its cloud metadata or the office network.
REFUSED_TARGETS = [
    "http://127.0.0.1:5432/",
    "http://localhost:8000/hook",
    "http://[::1]:8000/hook",
    "http://0x7f000001/hook",
    "http://2130706433/hook",
    "http://017700000001/hook",
    "http://0177.0.0.1/hook",
    "http://127.1/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.9/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://[64:ff9b::a9fe:a9fe]/hook",
    "http://[2002:7f00:1::]/hook",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://user@example.org@127.0.0.1/hook",
]

PUBLIC = "93.184.215.14"  # a documentation-free public address (never connected to here)


def fixed(mapping: dict[str, list[str]]) -> egress.Resolver:
    """A resolver answering from ``mapping`` (an unknown name does not resolve)."""

    def resolve(host: str, _port: int) -> list[str]:
        if host not in mapping:
            raise OSError("does not resolve")
        return list(mapping[host])

    return resolve


@pytest.mark.parametrize("url", REFUSED_TARGETS)
def test_ssrf_subscription_refuses_non_public_targets(url: str) -> None:
    with pytest.raises(EgressRefused):
        EgressPolicy().vet(url)


@pytest.mark.parametrize("url", REFUSED_TARGETS)
def test_ssrf_subscription_creation_names_the_refusal(url: str) -> None:
    body = {
        "code": "ssrf-probe",
        "event_types": ["person.*"],
        "channel": "webhook",
        "target": url,
        "purpose": "social_protection",
    }
    with pytest.raises(SchemaViolation) as refused:
        service.validate_create(body, amqp_available=False)
    [problem] = refused.value.violations
    assert problem.path == "$.target" and problem.rule in ("egress", "url")


def test_ssrf_metadata_name_refused_whether_or_not_it_resolves() -> None:
    resolving = EgressPolicy(resolver=fixed({"metadata.google.internal": ["169.254.169.254"]}))
    with pytest.raises(EgressRefused, match="non-public"):
        resolving.vet("http://metadata.google.internal/computeMetadata/v1/")
    with pytest.raises(EgressRefused, match="does not resolve"):
        EgressPolicy(resolver=fixed({})).vet("http://metadata.google.internal/")


def test_ssrf_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    policy = EgressPolicy(resolver=fixed({"mixed.example": [PUBLIC, "10.0.0.7"]}))
    with pytest.raises(EgressRefused):
        policy.vet("https://mixed.example/hook")
    public = EgressPolicy(resolver=fixed({"hook.example": [PUBLIC]}))
    target = public.vet("https://hook.example/hook")
    assert (target.host, target.port, target.address) == ("hook.example", 443, PUBLIC)


def test_ssrf_allow_list_is_explicit_and_exact() -> None:
    policy = EgressPolicy(frozenset({"127.0.0.1:8105", "mis.internal"}))
    assert policy.vet("http://127.0.0.1:8105/cash").address is None  # allowed: resolved as usual
    assert policy.vet("https://mis.internal:8443/x").address is None  # any port of that host
    for other in (
        "http://127.0.0.1:5432/",  # another port
        "http://localhost:8105/",  # another spelling of the same host
        "http://2130706433:8105/",
        "http://[::ffff:127.0.0.1]:8105/",
    ):
        with pytest.raises(EgressRefused):
            policy.vet(other)


def test_ssrf_allow_hosts_setting_is_checked_and_read() -> None:
    settings = load_settings(env={"SRHUB_OUTBOUND__ALLOW_HOSTS": "127.0.0.1:8105, mis.internal"})
    assert settings.outbound.allow_hosts == ("127.0.0.1:8105", "mis.internal")
    assert EgressPolicy.from_settings(settings).allowed("mis.internal", 443)
    with pytest.raises(SettingsError, match=r"(?i)allow_hosts"):
        load_settings(env={"SRHUB_OUTBOUND__ALLOW_HOSTS": "127.0.0.1:port"})
    with pytest.raises(SettingsError, match=r"(?i)allow_hosts"):
        load_settings(env={"SRHUB_OUTBOUND__ALLOW_HOSTS": "evil host"})


# -- send time ----------------------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.hosts: list[str] = []

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        self.hosts.append(Request(environ).headers.get("Host", ""))
        return Response("{}", mimetype="application/json")(environ, start_response)


@pytest.fixture
def loopback_receiver() -> Iterator[tuple[_Recorder, int]]:
    recorder = _Recorder()
    server = make_server("127.0.0.1", 0, recorder, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield recorder, server.server_port
    finally:
        server.shutdown()
        thread.join(5)


def _sender(policy: EgressPolicy) -> OutboundSender:
    return OutboundSender(RetryPolicy(attempts=1, initial_delay=0.01), timeout=2, egress=policy)


def test_ssrf_dns_rebinding_is_refused_at_send_time(loopback_receiver) -> None:
    recorder, port = loopback_receiver
    answers = iter([[PUBLIC], ["127.0.0.1"]])  # public when created, loopback when sent
    policy = EgressPolicy(resolver=lambda _host, _port: next(answers))
    url = f"http://rebind.example:{port}/hook"
    policy.vet(url)  # the creation check passes
    attempt = _sender(policy).post_once(url, b"{}", {})
    assert not attempt.ok and not attempt.retryable
    assert attempt.error == REFUSED_ERROR and attempt.status_code is None
    assert recorder.hosts == []  # nothing reached the internal endpoint


def test_ssrf_connection_is_pinned_to_the_vetted_address(loopback_receiver, monkeypatch) -> None:
    """The socket goes to the address vetted (the system resolver never sees the name), while
    the Host header keeps the name."""
    recorder, port = loopback_receiver
    monkeypatch.setattr(egress, "is_public_address", lambda _address: True)
    policy = EgressPolicy(resolver=fixed({"pinned.example": ["127.0.0.1"]}))
    attempt = _sender(policy).post_once(f"http://pinned.example:{port}/hook", b"{}", {})
    assert attempt.ok, attempt.error
    assert recorder.hosts == [f"pinned.example:{port}"]


def test_ssrf_guarded_session_refuses_a_connection_nobody_vetted(loopback_receiver) -> None:
    recorder, port = loopback_receiver
    session = EgressPolicy().session()
    with pytest.raises(requests.ConnectionError):
        session.post(f"http://127.0.0.1:{port}/hook", data=b"{}", timeout=2)
    assert recorder.hosts == []


def test_ssrf_refusal_reads_the_same_for_every_internal_target() -> None:
    """The delivery log must not tell a closed port from an open one, or a name from an IP."""
    sender = _sender(EgressPolicy())
    errors = {
        sender.post_once(url, b"{}", {}).error
        for url in ("http://127.0.0.1:1/", "http://127.0.0.1:5432/", "http://10.9.9.9/")
    }
    assert errors == {REFUSED_ERROR}
