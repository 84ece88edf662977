"""Who may talk DCI to the registry: signatures by default, an operator's explicit exemption for
a sender that cannot sign, and a present signature that must verify whoever sends it."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.dci import senders
from hub.settings import SettingsError, load_settings
from standards.dci.signature import public_key_base64, sign_envelope
from tests.integration.dci_support import (
    SENDER,
    Dci,
    check_ack,
    check_problem,
    check_sync,
    idtype,
)

PARTNER = "partner-without-pki"


@pytest.fixture
def dci(db_url: str, tmp_path: Path):
    harness = Dci(db_url, tmp_path, extra={"callback_attempts": 1, "key_cache_seconds": 0.2})
    senders.register_callback_uri(harness.runtime.sessions, PARTNER, harness.receiver.base)
    yield harness
    harness.close()


def as_partner(dci: Dci, signature: str | None, **header) -> dict:
    body = idtype(dci, sign=False, sender_id=PARTNER, **header)
    if signature is not None:
        body["signature"] = signature
    return body


def signed_by(key: Ed25519PrivateKey, body: dict, sender: str = PARTNER) -> dict:
    body["signature"] = sign_envelope(
        body["header"], body["message"], key, sender_id=sender, key_id="k9"
    )
    return body


def test_a_sender_nobody_onboarded_is_refused_whatever_it_sends(dci):
    stranger_key = Ed25519PrivateKey.generate()
    for label, body in (
        ("unsigned", as_partner(dci, None)),
        ("placeholder", as_partner(dci, "invalid-signature")),
        ("well-formed, unknown key", signed_by(stranger_key, as_partner(dci, None))),
    ):
        sync = dci.post("sync/search", body)
        assert sync.status_code == 403, label
        problem = check_problem(sync, "err.sender_id.invalid")
        assert "not onboarded" in problem["detail"] and "srhub dci add-key" in problem["detail"]
        body["header"]["message_id"] += "-async"
        later = dci.post("search", body)
        assert later.status_code == 403, label
        check_problem(later, "err.sender_id.invalid")
    assert dci.receiver.received.empty()


def test_an_exempt_sender_may_omit_the_signature_but_never_send_a_bad_one(dci, caplog):
    assert senders.allow_unsigned(
        dci.runtime.sessions, PARTNER, by="ops", reason="no PKI until March"
    )
    assert not senders.allow_unsigned(dci.runtime.sessions, PARTNER, by="ops", reason="again")
    caplog.set_level(logging.INFO, logger="hub.dci.server")
    for signature in (None, "", "   "):
        response = dci.post("sync/search", as_partner(dci, signature))
        assert response.status_code == 200, (signature, response.get_json())
        assert check_sync(response)["header"]["status"] == "succ"
    assert "unsigned (allowed)" in caplog.text
    # A signature that is present must verify: placeholders and signatures made with a key
    # the registry does not hold are refused, from this sender too.
    for label, body in (
        ("placeholder", as_partner(dci, "unsigned-stub")),
        ("garbage", as_partner(dci, "invalid-signature")),
        ("real but unknown key", signed_by(Ed25519PrivateKey.generate(), as_partner(dci, None))),
    ):
        response = dci.post("sync/search", body)
        assert response.status_code == 401, label
        problem = check_problem(response, "err.signature.invalid")
        assert "leave signature out" in problem["detail"], label
        body["header"]["message_id"] += "-async"
        ack = check_problem(dci.post("search", body), "err.signature.invalid")
        assert ack["message"]["ack_status"] == "ERR"
    # unsigned async works end to end: ACK, then the callback
    accepted = check_ack(dci.post("search", as_partner(dci, None)))["message"]
    assert accepted["ack_status"] == "ACK"
    path, callback = dci.receiver.next()
    assert path == "/registry/on-search"
    assert callback["message"]["correlation_id"] == accepted["correlation_id"]

    # Once it has a key, the exemption no longer lets it skip signing.
    key = Ed25519PrivateKey.generate()
    senders.register_key(dci.runtime.sessions, PARTNER, "k9", public_key_base64(key.public_key()))
    time.sleep(0.3)  # key_cache_seconds
    missing = dci.post("sync/search", as_partner(dci, None))
    assert missing.status_code == 401
    check_problem(missing, "err.signature.missing")
    assert dci.post("sync/search", signed_by(key, as_partner(dci, None))).status_code == 200
    assert senders.revoke_key(dci.runtime.sessions, PARTNER, "k9")

    # Revoked: refused again (within the key cache time).
    assert senders.revoke_unsigned(dci.runtime.sessions, PARTNER, by="ops")
    assert not senders.revoke_unsigned(dci.runtime.sessions, PARTNER, by="ops")
    time.sleep(0.3)
    refused = dci.post("sync/search", as_partner(dci, None))
    assert refused.status_code == 403
    check_problem(refused, "err.sender_id.invalid")


def test_signatures_cannot_be_switched_off(tmp_path):
    """The old switch is accepted when on (and ignored) and refused at start when off."""
    for value, ok in ((True, True), (False, False), ("no", False)):
        if ok:
            settings = load_settings(
                env={}, data_dir=tmp_path, extra={"dci": {"require_signatures": value}}
            )
            assert not hasattr(settings.dci, "require_signatures")
        else:
            with pytest.raises(SettingsError, match="allow-unsigned"):
                load_settings(
                    env={}, data_dir=tmp_path, extra={"dci": {"require_signatures": value}}
                )


def test_operators_grant_list_and_revoke_exemptions_from_the_cli(tmp_path):
    from click.testing import CliRunner, Result

    from hub.cli import main

    # No DNS here: the partner's host is allowed by name, as an operator allows one explicitly.
    env = {
        "SRHUB_DATA_DIR": str(tmp_path),
        "SRHUB_DATABASE_URL": "",
        "SRHUB_OUTBOUND__ALLOW_HOSTS": "mis.example",
    }
    runner = CliRunner()

    def dci_cli_run(args: list[str]) -> Result:
        return runner.invoke(main, ["dci", *args], env=env)

    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    empty = dci_cli_run(["senders"])
    assert empty.exit_code == 0 and "no DCI sender is onboarded" in empty.output
    no_reason = dci_cli_run(["allow-unsigned", PARTNER])
    assert no_reason.exit_code != 0 and "--reason" in no_reason.output
    granted = dci_cli_run(["allow-unsigned", PARTNER, "--reason", "no PKI yet", "--by", "amina"])
    assert granted.exit_code == 0, granted.output
    twice = dci_cli_run(["allow-unsigned", PARTNER, "--reason", "x"])
    assert twice.exit_code != 0 and "already" in twice.output
    public = public_key_base64(Ed25519PrivateKey.generate().public_key())
    assert dci_cli_run(["add-key", SENDER, "k1", public]).exit_code == 0
    assert (dci_cli_run(["add-callback", PARTNER, "https://mis.example/dci"])).exit_code == 0
    # SSRF (issue 17): a callback on the hub's own machine or network is refused at onboarding.
    for internal in ("http://127.0.0.1:5432/dci", "http://169.254.169.254/", "http://2130706433/"):
        refused = dci_cli_run(["add-callback", PARTNER, internal])
        assert refused.exit_code != 0, internal
        assert "non-public" in refused.output or "dotted-quad" in refused.output
    table = dci_cli_run(["senders"])
    assert f"{PARTNER}\tUNSIGNED allowed by amina: no PKI yet" in table.output
    assert f"{SENDER}\tsigns with k1" in table.output
    listed = json.loads(dci_cli_run(["senders", "--json"]).stdout)
    partner = next(s for s in listed if s["sender_id"] == PARTNER)
    assert partner["unsigned"]["allowed_by"] == "amina"
    assert partner["callbacks"] == ["https://mis.example/dci"]
    revoked = dci_cli_run(["revoke-unsigned", PARTNER])
    assert revoked.exit_code == 0
    again = dci_cli_run(["revoke-unsigned", PARTNER])
    assert again.exit_code != 0
    after = json.loads(dci_cli_run(["senders", "--json"]).stdout)
    assert next(s for s in after if s["sender_id"] == PARTNER)["unsigned"] is None
