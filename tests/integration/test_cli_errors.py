"""Every ``srhub`` command ends the same way on the same trouble: ``Error: <reason>`` on stderr
and the exit code of its kind (``hub.cli.errors``), never a traceback.

Commands run through the real entry group with click's CliRunner (and a few as a subprocess,
as an operator starts them); settings come from ``SRHUB_*`` variables.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from hub.cli import main
from hub.cli.errors import (
    BadSettings,
    BrokenInstall,
    FileUnreadable,
    SchemaBehind,
    Unreachable,
)
from hub.dbschema import head_revision, upgrade_to_head
from registry_core.db import make_engine

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def srhub(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin)


def assert_error(result: Result, code: int, *fragments: str) -> None:
    """The command stopped with ``Error: ...`` naming every fragment, and no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # click's own exit
    assert result.stderr.startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


@pytest.fixture
def fresh(tmp_path: Path) -> dict[str, str]:
    """Settings for an embedded hub whose SQLite database does not exist yet."""
    return {"SRHUB_DATA_DIR": str(tmp_path / "var"), "SRHUB_DATABASE_URL": ""}


@pytest.fixture
def upgraded(fresh: dict[str, str]) -> dict[str, str]:
    result = srhub(fresh, "db", "upgrade")
    assert result.exit_code == 0, result.output
    return fresh


# Commands that need the database, each with the arguments of a harmless call.
DATABASE_COMMANDS: list[tuple[str, ...]] = [
    ("users", "list"),
    ("token", "api-key", "list"),
    ("dci", "senders"),
    ("monitoring", "alerts"),
    ("monitoring", "prune"),
    ("subscriptions", "list"),
    ("dead-letters", "list", "--wait", "0"),  # the embedded queue lives in the database
    ("audit", "verify"),
]


@pytest.mark.parametrize(
    "args",
    [
        ("db", "current"),
        ("db", "upgrade"),
        ("token", "issue", "--role", "admin", "--sub", "x"),
        ("worker", "relay"),
        ("dedup", "--input", "-", "--output", "-"),
        ("run", "--no-sandbox", "--port", "0"),
        *DATABASE_COMMANDS,
    ],
    ids=" ".join,
)
def test_a_malformed_setting_is_named_with_exit_code_3(
    fresh: dict[str, str], args: tuple[str, ...]
) -> None:
    result = srhub({**fresh, "SRHUB_PORT": "abc"}, *args, stdin="id\n")
    assert_error(result, BadSettings.exit_code, "SRHUB_PORT must be a whole number, not 'abc'")


def test_bad_component_settings_stop_every_command_at_start(fresh: dict[str, str]) -> None:
    typo = srhub({**fresh, "SRHUB_EXTRA": '{"alert_lag_second": 5}'}, "users", "list")
    assert_error(typo, 3, "SRHUB_EXTRA: extra.alert_lag_second is not a setting", "alert_lag")
    negative = srhub({**fresh, "SRHUB_DCI__MAX_PAGE_SIZE": "-1"}, "dci", "signing-key")
    assert_error(negative, 3, "SRHUB_DCI__MAX_PAGE_SIZE must be a whole number greater than 0")
    secret = srhub(
        {**fresh, "SRHUB_EXTRA": '{"alert_webhook_secret": 12345}'}, "monitoring", "alerts"
    )
    assert_error(secret, 3, "extra.alert_webhook_secret must be a string")
    assert "12345" not in secret.output  # a secret's value is never repeated


@pytest.mark.parametrize(
    "args",
    [
        ("db", "current"),
        ("db", "upgrade"),
        ("run", "--no-sandbox", "--port", "0"),
        *DATABASE_COMMANDS,
    ],
    ids=" ".join,
)
def test_an_unreachable_database_is_named_without_its_password(
    fresh: dict[str, str], args: tuple[str, ...]
) -> None:
    port = closed_port()
    url = f"postgresql://srhub:s3cret-pw@127.0.0.1:{port}/registry"
    result = srhub({**fresh, "SRHUB_DATABASE_URL": url}, *args)
    assert_error(
        result,
        Unreachable.exit_code,
        f"cannot reach the database postgresql://srhub:***@127.0.0.1:{port}/registry",
        "Connection refused",
        "SRHUB_DATABASE_URL",
    )
    assert "s3cret-pw" not in result.output


def test_an_unreachable_broker_is_named(upgraded: dict[str, str]) -> None:
    url = f"amqp://guest:s3cret-pw@127.0.0.1:{closed_port()}/%2F"
    result = srhub({**upgraded, "SRHUB_AMQP_URL": url}, "dead-letters", "list", "--wait", "0")
    assert_error(result, Unreachable.exit_code, "cannot reach the broker", "SRHUB_AMQP_URL")
    assert "s3cret-pw" not in result.output


@pytest.mark.parametrize("args", [*DATABASE_COMMANDS, ("worker", "relay")], ids=" ".join)
def test_commands_never_migrate_an_empty_database(
    fresh: dict[str, str], args: tuple[str, ...]
) -> None:
    result = srhub(fresh, *args)
    assert_error(result, SchemaBehind.exit_code, "has no hub schema yet", "`srhub db upgrade`")
    url = f"sqlite:///{Path(fresh['SRHUB_DATA_DIR']) / 'srhub.db'}"
    engine = make_engine(url)
    try:
        with engine.connect() as connection:  # nothing was created behind the operator's back
            tables = connection.execute(text("SELECT name FROM sqlite_master")).all()
    finally:
        engine.dispose()
    assert tables == []


def _stamp(env: dict[str, str], revision: str) -> None:
    engine = make_engine(f"sqlite:///{Path(env['SRHUB_DATA_DIR']) / 'srhub.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def _downgrade_one(env: dict[str, str]) -> None:
    """The database as a hub one release older left it."""
    from alembic import command

    from hub.dbschema import alembic_config

    url = f"sqlite:///{Path(env['SRHUB_DATA_DIR']) / 'srhub.db'}"
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "-1")
    finally:
        engine.dispose()


def test_a_schema_behind_or_ahead_is_refused_until_upgraded(upgraded: dict[str, str]) -> None:
    assert srhub(upgraded, "users", "list").exit_code == 0
    assert srhub(upgraded, "db", "current").stdout.strip() == head_revision()

    _downgrade_one(upgraded)
    behind = srhub(upgraded, "users", "list")
    from alembic.script import ScriptDirectory

    from hub.dbschema import alembic_config

    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head_revision())
    assert previous is not None
    assert_error(
        behind,
        6,
        f"is at schema revision {previous.down_revision}, this srhub needs {head_revision()}",
        "run `srhub db upgrade`",
    )
    shown = srhub(upgraded, "db", "current")
    assert shown.exit_code == 0 and "run `srhub db upgrade`" in shown.stdout

    upgrade = srhub(upgraded, "db", "upgrade")
    assert upgrade.exit_code == 0, upgrade.output
    assert srhub(upgraded, "users", "list").exit_code == 0

    _stamp(upgraded, "9999_from_a_newer_srhub")
    ahead = srhub(upgraded, "token", "api-key", "list")
    assert_error(ahead, 6, "9999_from_a_newer_srhub, which this srhub does not know")


def test_a_file_a_setting_names_must_be_readable(upgraded: dict[str, str], tmp_path: Path):
    missing = tmp_path / "precedence.toml"
    result = srhub({**upgraded, "SRHUB_PRECEDENCE_FILE": str(missing)}, "db", "upgrade")
    assert_error(result, 3, f"SRHUB_PRECEDENCE_FILE: cannot read {missing}", "No such file")
    config = srhub({**upgraded, "SRHUB_CONFIG": str(missing)}, "users", "list")
    assert_error(config, 3, f"SRHUB_CONFIG names {missing}, which is not a file")
    broken = tmp_path / "keys.json"
    broken.write_text("{not json", "utf-8")
    keys = srhub({**upgraded, "SRHUB_KEY_FILE": str(broken)}, "db", "upgrade")
    assert_error(keys, 3, f"{broken} (SRHUB_KEY_FILE) is not a key file")
    keyring = srhub(
        {**upgraded, "SRHUB_TOKEN_KEYRING_FILE": str(broken)},
        "token",
        "issue",
        "--role",
        "admin",
        "--sub",
        "x",
    )
    assert_error(keyring, 3, f"{broken} is not JSON")


def test_a_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", "utf-8")
    result = srhub({"SRHUB_DATA_DIR": str(blocker / "var")}, "db", "upgrade")
    assert_error(result, FileUnreadable.exit_code, str(blocker / "var"))


# --- a broken installation ---------------------------------------------------------------------


@pytest.fixture
def ghost_command(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from hub.cli import root

    monkeypatch.setitem(root.LAZY_COMMANDS, "ghost", "hub.cli.ghost_group:ghost")
    yield "hub.cli.ghost_group"


def test_a_command_whose_module_is_missing_names_it(ghost_command: str) -> None:
    result = srhub({}, "ghost")
    assert_error(result, BrokenInstall.exit_code, f"needs the module {ghost_command}", "reinstall")
    listing = srhub({}, "--help")  # the command list does not hide it either
    assert_error(listing, BrokenInstall.exit_code, ghost_command)


def test_run_stops_when_a_component_is_missing(
    fresh: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before Step 8 a missing piece printed "not available in this build" and the hub ran
    on without it; now the start stops, naming the module, and stops what it started."""
    from hub import embedded_services
    from hub.runtime import HubRuntime

    def missing(*_args: object, **_options: object) -> None:
        raise ModuleNotFoundError("No module named 'hub.monitoring.service'", name="x.y")

    closed: list[bool] = []
    original_close = HubRuntime.close

    def close(self: HubRuntime) -> None:
        closed.append(True)
        original_close(self)

    monkeypatch.setattr(embedded_services, "start_monitoring_for", missing)
    monkeypatch.setattr(HubRuntime, "close", close)
    result = srhub(fresh, "run", "--no-sandbox", "--no-workers", "--port", "0")
    assert_error(result, BrokenInstall.exit_code, "needs the module x.y")
    assert closed == [True]
    assert "srhub: ready" not in result.output


# --- as a process -------------------------------------------------------------------------------


def _process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SRHUB_")}
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_installed_command_prints_errors_not_tracebacks(fresh: dict[str, str]) -> None:
    bad = _process({**fresh, "SRHUB_PORT": "abc"}, "db", "current")
    assert (bad.returncode, bad.stdout) == (3, "")
    assert bad.stderr == "Error: SRHUB_PORT must be a whole number, not 'abc'\n"
    url = f"postgresql://root@127.0.0.1:{closed_port()}/x"
    down = _process({**fresh, "SRHUB_DATABASE_URL": url}, "users", "list")
    assert down.returncode == 5 and down.stderr.startswith("Error: cannot reach the database")
    assert "Traceback" not in down.stderr
    empty = _process(fresh, "subscriptions", "list")
    assert empty.returncode == 6 and "run `srhub db upgrade`" in empty.stderr


def test_upgrade_then_use(fresh: dict[str, str]) -> None:
    """The way out every refusal names works: upgrade, then the command runs."""
    upgrade_to_head(f"sqlite:///{Path(fresh['SRHUB_DATA_DIR']) / 'srhub.db'}")
    for args in DATABASE_COMMANDS:
        result = srhub(fresh, *args)
        assert result.exit_code == 0, (args, result.output)


def test_the_operations_guide_lists_every_exit_code() -> None:
    from hub.cli.errors import EXIT_CODES

    guide = (ROOT / "docs" / "operations.md").read_text("utf-8")
    assert [code for code in EXIT_CODES if f"\n| {code} | " not in guide] == []


def test_dead_letters_are_replayed_and_discarded_by_selection(upgraded: dict[str, str]) -> None:
    """`srhub dead-letters replay|discard` act on the letters the filters select, and say how
    many they took and how many they left."""
    from hub.broker import Message, connect
    from hub.broker.base import EXCHANGE_DEAD, EXCHANGE_INBOUND, QUEUE_DEAD, DeadLetterReason
    from hub.broker.messages import dead_letter_headers
    from hub.settings import load_settings
    from hub.workers.topology import INGEST_QUEUE, WORKER_QUEUES

    settings = load_settings(env=upgraded)
    with connect(settings) as broker:
        broker.declare_topology(list(WORKER_QUEUES))
        for number, error_class in enumerate(("NoRoute", "MappingError")):
            original = Message(b"{}", "tax.income_row", f"m{number}")
            reason = DeadLetterReason.now(error_class, "for the test", 1)
            headers = dead_letter_headers(
                original, reason, exchange=EXCHANGE_INBOUND, queue=INGEST_QUEUE.name
            )
            broker.publish(EXCHANGE_DEAD, [Message(b"{}", "tax.income_row", f"m{number}", headers)])
        assert broker.queue_depth(QUEUE_DEAD) == 2

    replayed = srhub(upgraded, "dead-letters", "replay", "--error-class", "NoRoute")
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1; kept 1" in replayed.output
    discarded = srhub(upgraded, "dead-letters", "discard", "--error-class", "MappingError", "--yes")
    assert discarded.exit_code == 0, discarded.output
    assert "discarded 1; kept 0" in discarded.output
    with connect(settings) as broker:
        assert broker.queue_depth(QUEUE_DEAD) == 0
        assert broker.queue_depth(INGEST_QUEUE.name) == 1  # the replayed one, back in line
