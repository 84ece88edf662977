"""Online rotation of the identifier keys (issue 17, item 3), on SQLite and PostgreSQL:
households registered under key version 1, a rotation, more under version 2; searches by
identifier find both before, during and after the re-key; the re-key moves every row (and
every sealed column) to version 2; retiring version 1 is refused until then; existing key
files and ciphertexts load unchanged; ``srhub keys`` drives it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from hub.backup import keys as backup_keys
from hub.keyrotation.keyfile import KeyRotationError, retire, rotate
from hub.keyrotation.rekey import (
    IDENTIFIER_CIPHERTEXTS,
    IDENTIFIER_HASHES,
    rekey,
    rows_using,
    version_counts,
)
from hub.runtime import HubRuntime
from hub.settings import load_keys, load_settings
from hub.subscriptions.tables import Subscription
from registry_core.crypto import IdentifierCipher, IdentifierDecryptionError, ciphertext_version
from registry_core.models import Identifier
from registry_core.queries import HouseholdQueries
from registry_core.services.base import Source
from standards.dci.query import parse_query

STAFF = Source("registry_staff")
REALM = "srhub"


@pytest.fixture
def runtime(db_url: str, tmp_path: Path) -> Iterator[HubRuntime]:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path / "var", sandbox=False)
    hub = HubRuntime(settings)
    hub.registry.ensure_identifier_systems()
    try:
        yield hub
    finally:
        hub.close()


def _register(hub: HubRuntime, national_id: str) -> str:
    record = {
        "admin_area_code": "UG",
        "address": "1 Key Lane",
        "members": [
            {
                "given_name": "Ana",
                "family_name": f"K{national_id}",
                "sex": "female",
                "birth_date": "1990-01-01",
                "relationship": "head",
                "identifiers": [{"system": "national_id", "value": national_id}],
            }
        ],
    }
    return str(hub.registry.register_household(record, STAFF).record["id"])


def _seal_a_secret(hub: HubRuntime, code: str) -> None:
    """A sealed column other than identifiers: a subscription's webhook secret."""
    with hub.sessions.begin() as session:
        session.add(
            Subscription(
                code=code,
                program_code="prog",
                event_types=["household.created"],
                filters={},
                channel="webhook",
                target="https://example.org/hook",
                secret_sealed=hub.cipher.seal("subscription-secret", b"s3cret-" + code.encode()),
                purpose="test",
            )
        )


def _assert_all_found(hub: HubRuntime, ids: dict[str, str]) -> None:
    for national_id in ids:
        found = hub.registry.find_person_by_identifier(
            "national_id", f" {national_id[:3]}-{national_id[3:]}"
        )
        assert found is not None, national_id
        values = [i["value"] for i in found["identifiers"] if i["system"] == "national_id"]
        assert values == [national_id]
        # The DCI search path (one prepared statement, the hashes bound as a list).
        query = parse_query("idtype-value", {"type": "UIN", "value": national_id})
        _found, total = HouseholdQueries(hub.sessions, hub.cipher).search(query)
        assert total == 1, national_id


def _hash_versions(hub: HubRuntime) -> list[int]:
    with hub.sessions() as session:
        return sorted(session.scalars(select(Identifier.value_hash_version)))


def test_rotate_rekey_retire_round_trip(runtime: HubRuntime) -> None:
    settings = runtime.settings
    first_ids = {f"10000{n}": "" for n in range(3)}
    for national_id in first_ids:
        _register(runtime, national_id)
    _seal_a_secret(runtime, "sub-v1")
    pseudonym_key = load_keys(settings).identifier_hmac_key
    before_rotation = backup_keys.fingerprint(settings)
    assert before_rotation is not None and "," not in before_rotation

    with pytest.raises(KeyRotationError, match="active"):
        retire(settings, 1, 0)
    assert rotate(settings) == 2
    runtime.cipher.refresh(force=True)  # a running hub takes it within a second by itself
    assert runtime.cipher.active_version == 2
    second_ids = {f"20000{n}": "" for n in range(2)}
    for national_id in second_ids:
        _register(runtime, national_id)
    _seal_a_secret(runtime, "sub-v2")
    assert _hash_versions(runtime) == [1, 1, 1, 2, 2]
    everyone = first_ids | second_ids
    _assert_all_found(runtime, everyone)  # before the re-key: under both versions

    with runtime.sessions() as session:
        counts = version_counts(session, REALM)
    assert counts[IDENTIFIER_HASHES] == {1: 3, 2: 2}
    assert counts[IDENTIFIER_CIPHERTEXTS] == {1: 3, 2: 2}
    assert counts["subscriptions.secret_sealed"] == {1: 1, 2: 1}
    with pytest.raises(KeyRotationError, match="rows still use key version 1"):
        retire(settings, 1, rows_using(counts, 1))

    # The re-key one row at a time, with reads between every batch.
    moved = 0
    for _ in range(40):
        step = rekey(runtime.sessions, runtime.cipher, REALM, batch=1, max_batches=1)
        moved += step.total_moved
        _assert_all_found(runtime, everyone)
        with runtime.sessions() as session:
            if rows_using(version_counts(session, REALM), 1) == 0:
                break
    assert moved == 4  # three identifiers and one secret
    assert not rekey(runtime.sessions, runtime.cipher, REALM).total_moved  # nothing left
    assert _hash_versions(runtime) == [2, 2, 2, 2, 2]
    with runtime.sessions() as session:
        counts = version_counts(session, REALM)
        sealed = session.scalars(select(Subscription.secret_sealed)).all()
    assert rows_using(counts, 1) == 0
    assert {ciphertext_version(bytes(b)) for b in sealed} == {2}

    retire(settings, 1, rows_using(counts, 1))
    stored = json.loads(settings.effective_key_file.read_text())
    assert "identifier_encryption_key" not in stored  # version 1's encryption key is gone
    keys = load_keys(settings)
    assert sorted(keys.identifier_versions) == [2]
    assert keys.identifier_hmac_key == pseudonym_key  # partners' references do not change
    fresh = HubRuntime(settings)  # a process started after the retire
    try:
        _assert_all_found(fresh, everyone)
        with fresh.sessions() as session:
            secrets_ = [
                fresh.cipher.unseal("subscription-secret", bytes(b))
                for b in session.scalars(select(Subscription.secret_sealed))
            ]
        assert sorted(secrets_) == [b"s3cret-sub-v1", b"s3cret-sub-v2"]
    finally:
        fresh.close()
    assert backup_keys.fingerprint(settings) != before_rotation


def test_existing_key_files_and_ciphertexts_load_unchanged(tmp_path: Path) -> None:
    enc, look = os.urandom(32), os.urandom(32)
    old = IdentifierCipher(enc, look)  # what every deployment wrote before rotation
    blob, digest = old.encrypt("national_id", "123456"), old.lookup_hash("national_id", "123456")
    assert blob[0] == 1
    import base64

    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    data = tmp_path / "var"
    data.mkdir()
    (data / "keys.json").write_text(
        json.dumps(
            {
                "jwt_secret": b64(os.urandom(32)),
                "identifier_encryption_key": b64(enc),
                "identifier_hmac_key": b64(look),
            }
        )
    )
    settings = load_settings(env={}, data_dir=data, sandbox=False)
    before = (data / "keys.json").read_bytes()
    legacy_fingerprint = backup_keys.fingerprint(settings)
    cipher = load_keys(settings).identifier_cipher()
    assert (data / "keys.json").read_bytes() == before  # loading writes nothing
    assert cipher.decrypt("national_id", blob) == "123456"
    assert cipher.lookup_hashes("national_id", "123-456") == [digest]

    assert rotate(settings) == 2
    rotated = load_keys(settings).identifier_cipher()
    assert rotated.active_version == 2
    assert rotated.decrypt("national_id", blob) == "123456"
    assert rotated.encrypt("national_id", "123456")[0] == 2
    assert rotated.lookup_hashes("national_id", "123456")[1] == digest
    # A backup taken before the rotation still restores: its key version is held.
    assert legacy_fingerprint in backup_keys.fingerprints(settings)  # type: ignore[operator]


def test_a_broken_keyring_is_a_settings_error(tmp_path: Path) -> None:
    from hub.settings import SettingsError

    data = tmp_path / "var"
    settings = load_settings(env={}, data_dir=data, sandbox=False)
    load_keys(settings)
    stored = json.loads(settings.effective_key_file.read_text())
    stored["identifier_keys"] = {"active": 3, "versions": {}}
    settings.effective_key_file.write_text(json.dumps(stored))
    with pytest.raises(SettingsError, match="active version"):
        load_keys(settings)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_srhub_keys_commands(runtime: HubRuntime, tmp_path: Path) -> None:
    from hub.cli import main

    _register(runtime, "300001")
    env = {
        "SRHUB_DATABASE_URL": runtime.settings.effective_database_url,
        "SRHUB_DATA_DIR": str(runtime.settings.data_dir),
        "SRHUB_SANDBOX": "false",
    }
    cli = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = cli.invoke(main, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    assert "versions held: 1; active: 1" in run("keys", "status")
    assert "not active" in run("keys", "rotate", "--inactive")  # staged: readable, not written
    assert "versions held: 1, 2; active: 1" in run("keys", "status")
    assert "key version 2 active" in run("keys", "activate", "2")
    runtime.cipher.refresh(force=True)  # this process follows the key file (within a second)
    _register(runtime, "300002")
    status = run("keys", "status")
    assert "identifiers.value_hash: v1=1, v2=1" in status
    assert "2 rows still use key version 1" in run("keys", "retire", "1", code=1)
    assert "moved 1 rows" in run("keys", "rekey", "--batch", "10")
    assert "identifiers.value_hash: v2=2" in run("keys", "status")
    assert "key version 1 retired" in run("keys", "retire", "1")
    assert "versions held: 2; active: 2" in run("keys", "status")
    stored = json.loads(runtime.settings.effective_key_file.read_text())
    ring = stored["identifier_keys"]["versions"]["2"]
    assert ring["encryption"] not in status and ring["lookup"] not in status  # no key material


def test_a_running_cipher_follows_rotate_and_retire_in_the_key_file(tmp_path: Path) -> None:
    from hub.settings.keys import KeyFileWatch

    settings = load_settings(env={}, data_dir=tmp_path / "var", sandbox=False)
    cipher = load_keys(settings).identifier_cipher()
    cipher.follow(KeyFileWatch(settings.effective_key_file, interval=0))  # the hub: 1 s
    old = cipher.encrypt("national_id", "555")
    rotate(settings)  # as another process would
    new = cipher.encrypt("national_id", "555")
    assert (old[0], new[0]) == (1, 2)  # taken up without a restart
    assert len(cipher.lookup_hashes("national_id", "555")) == 2
    retire(settings, 1, 0)
    assert cipher.versions == (2,)
    assert cipher.decrypt("national_id", new) == "555"
    with pytest.raises(IdentifierDecryptionError):
        cipher.decrypt("national_id", old)


def test_every_binary_column_is_known_sealed_or_not() -> None:
    """A new sealed column missing from ``sealed_columns`` would be unreadable once its key
    version is retired: every binary column must be listed here or there."""
    from sqlalchemy import LargeBinary

    from hub.dbschema import all_tables
    from hub.keyrotation.sealed import sealed_columns

    plain = {"intake_forms.xlsform", "intake_forms.xform", "intake_form_media.content"}
    sealed = {spec.name for spec in sealed_columns(REALM)} | {"identifiers.value_ciphertext"}
    binary = {
        f"{table.name}.{column.name}"
        for table in all_tables()
        for column in table.columns
        if isinstance(column.type, LargeBinary)
    }
    assert binary == plain | sealed


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_retention_round_carries_the_rekey_forward(runtime: HubRuntime) -> None:
    from hub.assembly import identifier_rekey_job
    from hub.workers.retention import run_retention

    for n in range(3):
        _register(runtime, f"40000{n}")
    job = identifier_rekey_job(runtime.settings)
    assert run_retention(runtime.sessions, [job])["identifier_rekey"] == 0  # one version
    rotate(runtime.settings)
    moved = run_retention(runtime.sessions, [job])["identifier_rekey"]
    assert moved == 3
    assert _hash_versions(runtime) == [2, 2, 2]
    assert run_retention(runtime.sessions, [job])["identifier_rekey"] == 0
