"""Settings: defaults give the embedded setup; TOML and SRHUB_* environment override them."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from hub.settings import SettingsError, load_keys, load_settings


def test_defaults_are_the_embedded_setup():
    settings = load_settings(env={})
    assert settings.effective_database_url == "sqlite:///var/srhub.db"
    assert settings.uses_embedded_broker and settings.port == 8000 and settings.sandbox


def test_toml_then_environment_take_priority(tmp_path: Path):
    config = tmp_path / "srhub.toml"
    config.write_text('[srhub]\nport = 9000\nlog_level = "DEBUG"\nsandbox = false\n')
    settings = load_settings(env={"SRHUB_CONFIG": str(config), "SRHUB_PORT": "9100"})
    assert settings.port == 9100 and settings.log_level == "DEBUG" and settings.sandbox is False


def test_bad_values_name_the_setting(tmp_path: Path):
    with pytest.raises(SettingsError, match="SRHUB_PORT"):
        load_settings(env={"SRHUB_PORT": "eighty"})
    config = tmp_path / "srhub.toml"
    config.write_text("[srhub]\ncolour = 1\n")
    with pytest.raises(SettingsError, match="colour"):
        load_settings(env={"SRHUB_CONFIG": str(config)})


def test_key_file_is_created_private_and_reused(tmp_path: Path):
    settings = load_settings(env={}, data_dir=tmp_path)
    first = load_keys(settings)
    path = tmp_path / "keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keys(settings).identifier_encryption_key == first.identifier_encryption_key
    assert "redacted" in repr(first)


def test_explicit_keys_win_and_are_checked(tmp_path: Path):
    key = base64.b64encode(os.urandom(32)).decode()
    env = {
        "SRHUB_JWT_SECRET": key,
        "SRHUB_IDENTIFIER_ENCRYPTION_KEY": key,
        "SRHUB_IDENTIFIER_HMAC_KEY": key,
        "SRHUB_DATA_DIR": str(tmp_path),
    }
    keys = load_keys(load_settings(env=env))
    assert keys.jwt_secret == base64.b64decode(key)
    assert not (tmp_path / "keys.json").exists()
    env["SRHUB_IDENTIFIER_HMAC_KEY"] = base64.b64encode(b"short").decode()
    with pytest.raises(SettingsError, match="32 bytes"):
        load_keys(load_settings(env=env))


def test_workers_starting_together_share_one_key_file(tmp_path: Path):
    import threading

    settings = load_settings(env={}, data_dir=tmp_path)
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        results.append(load_keys(settings).identifier_encryption_key)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temporary files left


def test_delivery_amqp_url_is_read_checked_and_only_used_on_the_embedded_broker():
    url = "amqp://guest:guest@rabbit:5672/%2F"
    embedded = load_settings(env={"SRHUB_DELIVERY_AMQP_URL": url})
    assert embedded.delivery_amqp_url == url
    assert embedded.forwards_amqp_deliveries and embedded.offers_amqp_channel
    plain = load_settings(env={})
    assert not plain.forwards_amqp_deliveries and not plain.offers_amqp_channel
    on_rabbitmq = load_settings(env={"SRHUB_AMQP_URL": url, "SRHUB_DELIVERY_AMQP_URL": url})
    assert on_rabbitmq.offers_amqp_channel and not on_rabbitmq.forwards_amqp_deliveries
    for bad in ("http://rabbit/", "rabbit:5672", "amqp://", "amqp://user:secret@/vhost"):
        with pytest.raises(SettingsError, match="SRHUB_DELIVERY_AMQP_URL") as caught:
            load_settings(env={"SRHUB_DELIVERY_AMQP_URL": bad})
        assert "secret" not in str(caught.value)
