"""Settings: defaults give the embedded setup; TOML and SRHUB_* environment override them."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from hub.settings import (
    DciSettings,
    MonitoringSettings,
    SettingsError,
    load_keys,
    load_settings,
    with_overrides,
)


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


# --- component sections ---------------------------------------------------------------------

LAG = 42.5


def _toml(tmp_path: Path, body: str) -> dict[str, str]:
    config = tmp_path / "srhub.toml"
    config.write_text(body, encoding="utf-8")
    return {"SRHUB_CONFIG": str(config)}


@pytest.mark.parametrize(
    "form",
    [
        "toml extra",
        "toml section",
        "SRHUB_EXTRA",
        "SRHUB_MONITORING",
        "SRHUB_MONITORING__ALERT_LAG_SECONDS",
        "extra override",
        "section override",
    ],
)
def test_every_form_of_a_component_setting_reads_the_same_typed_value(
    tmp_path: Path, form: str
) -> None:
    overrides: dict[str, object] = {}
    env: dict[str, str] = {}
    if form == "toml extra":
        env = _toml(tmp_path, f"[srhub.extra]\nalert_lag_seconds = {LAG}\n")
    elif form == "toml section":
        env = _toml(tmp_path, f"[srhub.monitoring]\nalert_lag_seconds = {LAG}\n")
    elif form == "SRHUB_EXTRA":
        env = {"SRHUB_EXTRA": json.dumps({"alert_lag_seconds": LAG})}
    elif form == "SRHUB_MONITORING":
        env = {"SRHUB_MONITORING": json.dumps({"alert_lag_seconds": LAG})}
    elif form == "SRHUB_MONITORING__ALERT_LAG_SECONDS":
        env = {"SRHUB_MONITORING__ALERT_LAG_SECONDS": f" {LAG} "}
    elif form == "extra override":
        overrides = {"extra": {"alert_lag_seconds": LAG}}
    else:
        overrides = {"monitoring": {"alert_lag_seconds": LAG}}
    settings = load_settings(env=env, **overrides)
    assert settings.monitoring == MonitoringSettings(alert_lag_seconds=LAG)
    assert isinstance(settings.monitoring.alert_lag_seconds, float)


def test_sources_override_key_by_key_in_priority_order(tmp_path: Path) -> None:
    env = _toml(
        tmp_path,
        # the section wins over extra within one file, wherever it is written
        "[srhub.monitoring]\nalert_lag_seconds = 1\nalert_dead_letter_growth = 7\n"
        "[srhub.extra]\nalert_lag_seconds = 2\nmessage_log_max_rows = 3\n",
    )
    from_file = load_settings(env=env).monitoring
    assert (from_file.alert_lag_seconds, from_file.message_log_max_rows) == (1.0, 3)
    env["SRHUB_EXTRA"] = '{"alert_lag_seconds": 4}'
    env["SRHUB_MONITORING"] = '{"alert_lag_seconds": 5, "message_log_max_rows": 6}'
    env["SRHUB_MONITORING__MESSAGE_LOG_MAX_ROWS"] = "8"
    merged = load_settings(env=env, monitoring={"alert_dead_letter_growth": 9}).monitoring
    assert merged.alert_lag_seconds == 5.0  # the environment's section over its extra
    assert merged.message_log_max_rows == 8  # one variable per field over the JSON
    assert merged.alert_dead_letter_growth == 9  # explicit overrides last
    assert merged.interval_seconds == MonitoringSettings().interval_seconds  # untouched


@pytest.mark.parametrize(
    ("key", "value", "section", "field_name"),
    [
        ("monitoring_interval_seconds", 0.2, "monitoring", "interval_seconds"),
        ("message_log_bodies", "gis, tax", "monitoring", "message_log_bodies"),
        ("delivery_log_max_age_days", 2, "monitoring", "delivery_log_max_age_days"),
        ("ui_secure_cookies", True, "ui", "secure_cookies"),
        ("sandbox_port_base", 0, "sandbox_mocks", "port_base"),
        ("sandbox_tax_interval_seconds", 0, "sandbox_mocks", "tax_interval_seconds"),
        ("sandbox_days_per_second", 1.5, "sandbox_mocks", "days_per_second"),
        ("sandbox_verification_round", 0, "sandbox_mocks", "verification_round"),
        ("dci", {"max_pending": 3}, "dci", "max_pending"),
        ("notifications", {"attempts": 2}, "notifications", "attempts"),
    ],
)
def test_each_key_of_the_old_extra_table_reaches_its_section(
    key: str, value: object, section: str, field_name: str
) -> None:
    settings = load_settings(env={"SRHUB_EXTRA": json.dumps({key: value})})
    found = getattr(getattr(settings, section), field_name)
    default = getattr(load_settings(env={}), section)
    expected = value[field_name] if isinstance(value, dict) else value
    if field_name == "message_log_bodies":
        expected = ("gis", "tax")
    assert found == expected and found != getattr(default, field_name)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SRHUB_EXTRA": '{"alert_lag": 5}'}, "SRHUB_EXTRA: extra.alert_lag is not a setting"),
        ({"SRHUB_EXTRA": '["x"]'}, "SRHUB_EXTRA: extra must be a table"),
        ({"SRHUB_EXTRA": "{x"}, "SRHUB_EXTRA is not valid JSON"),
        ({"SRHUB_DCI": '{"max_page": 5}'}, "SRHUB_DCI: dci.max_page is not a setting"),
        ({"SRHUB_DCI__MAX_BATCH": "2.5"}, "SRHUB_DCI__MAX_BATCH must be a whole number"),
        ({"SRHUB_UI__SECURE_COOKIE": "1"}, "SRHUB_UI__SECURE_COOKIE is not a setting"),
        ({"SRHUB_UI__SECURE_COOKIES": "maybe"}, "SRHUB_UI__SECURE_COOKIES must be true or false"),
        ({"SRHUB_EXTRA": '{"ui_secure_cookies": "yes"}'}, "extra.ui_secure_cookies must be true"),
        ({"SRHUB_EXTRA": '{"dci": {"async_workers": 0}}'}, "extra.dci.async_workers must be"),
        ({"SRHUB_EXTRA": '{"notifications": {"attempts": 0}}'}, "attempts must be a whole"),
        ({"SRHUB_EXTRA": '{"alert_error_rate_threshold": 1.5}'}, "at most 1, not 1.5"),
        ({"SRHUB_EXTRA": '{"message_log_max_rows": -1}'}, "message_log_max_rows must be"),
        ({"SRHUB_EXTRA": '{"message_log_bodies": 3}'}, "message_log_bodies must be a list"),
        ({"SRHUB_EXTRA": '{"sandbox_port_base": -1}'}, "sandbox_port_base must be a whole"),
        ({"SRHUB_MONITORING": '{"alert_webhook_url": "ops"}'}, "must be an http:// or https"),
        ({"SRHUB_DATABASE_URL": "not a url"}, "SRHUB_DATABASE_URL is not a database URL"),
        ({"SRHUB_AMQP_URL": "rabbit:5672"}, "SRHUB_AMQP_URL must be an amqp://"),
        (
            {"SRHUB_AMQP_URL": "amqp://u:secretpw@rabbit-1/srhub,rabbit-2:5672"},
            "SRHUB_AMQP_URL must be an amqp://",
        ),
    ],
)
def test_faulty_component_settings_are_refused_at_start_with_key_and_reason(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env=env)
    assert message in str(caught.value)


def test_a_secret_value_is_never_repeated_in_a_refusal(tmp_path: Path) -> None:
    env = _toml(tmp_path, "[srhub.monitoring]\nalert_webhook_secret = 987654321\n")
    with pytest.raises(SettingsError, match="alert_webhook_secret must be a string") as caught:
        load_settings(env=env)
    assert "987654321" not in str(caught.value)


def test_with_overrides_merges_a_table_over_the_current_section() -> None:
    base = load_settings(env={"SRHUB_EXTRA": '{"dci": {"max_pending": 3}}'})
    changed = with_overrides(base, dci={"async_workers": 4}, port=9)
    assert (changed.dci.max_pending, changed.dci.async_workers, changed.port) == (3, 4, 9)
    assert base.dci.async_workers == DciSettings().async_workers  # the original is untouched
    with pytest.raises(SettingsError, match=r"dci\.max_batch must be a whole number"):
        with_overrides(base, dci={"max_batch": "ten"})


def test_the_operations_guide_lists_every_component_setting() -> None:
    from hub.settings.model import EXTRA_KEYS, SECTIONS

    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text("utf-8")
    missing = [
        f"{name}.{field_name}"
        for name, section in SECTIONS.items()
        for field_name in section.field_names()
        if f"`{field_name}`" not in guide
    ]
    missing += [f"extra.{key}" for key in EXTRA_KEYS if f"`{key}`" not in guide]
    assert not missing, f"docs/operations.md does not describe {missing}"


def test_a_cluster_is_given_as_its_nodes_amqp_urls_separated_by_commas() -> None:
    nodes = "amqp://u:p@rabbit-1:5672/srhub, amqp://u:p@rabbit-2:5672/srhub"
    assert load_settings(env={"SRHUB_AMQP_URL": nodes}).amqp_url == nodes
