"""``srhub backup`` / ``srhub restore`` round trips on SQLite and PostgreSQL.

A restored registry must answer the same queries as the one backed up (households, a person
found by national ID — which needs the identifier keys — and the coverage report), and every
check a restore makes must refuse what would lose data: another kind of database, a damaged
archive, other keys, a target that already holds a registry.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from hub.backup import BackupError, make_backup
from hub.backup.service import ARCHIVE_PREFIX
from hub.cli import main
from hub.runtime import HubRuntime
from hub.settings import load_settings
from registry_core.service import Source
from tests.conftest import fresh_postgres_database

NATIONAL_IDS = ["1234567897", "2345678906", "3456789015"]


def srhub(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The database backed up and an empty one to restore into (a second machine)."""
    if request.param == "sqlite":
        yield "", ""  # each data_dir's own srhub.db
        return
    with (
        fresh_postgres_database("srhub_bk_a") as first,
        fresh_postgres_database("srhub_bk_b") as second,
    ):
        yield first, second


def _env(data_dir: Path, url: str) -> dict[str, str]:
    return {"SRHUB_DATA_DIR": str(data_dir), "SRHUB_DATABASE_URL": url}


def _fill(env: dict[str, str]) -> None:
    assert srhub(env, "db", "upgrade").exit_code == 0
    runtime = HubRuntime(load_settings(env=env))
    try:
        for number, national_id in enumerate(NATIONAL_IDS):
            member = {
                "given_name": f"Amina{number}",
                "family_name": "Otieno",
                "sex": "female",
                "birth_date": f"198{number}-02-03",
                "relationship": "head",
                "identifiers": [{"system": "national_id", "value": national_id}],
            }
            runtime.registry.register_household(
                {"admin_area_code": f"R01-D0{number % 2 + 1}", "members": [member]},
                Source("field_survey"),
            )
    finally:
        runtime.close()


def _answers(env: dict[str, str]) -> dict[str, Any]:
    """What a restore must keep: the same households, people found by their national ID (the
    look-up hash and the sealed value need the same keys) and the same coverage figures."""
    runtime = HubRuntime(load_settings(env=env))
    try:
        households, total = runtime.registry.list_households(limit=100)
        found = {}
        for national_id in NATIONAL_IDS:
            person = runtime.registry.find_person_by_identifier("national_id", national_id)
            assert person is not None
            found[national_id] = (person["id"], person["given_name"], person["identifiers"])
        report = srhub(env, "reports", "coverage", "--level", "2")
        assert report.exit_code == 0, report.output
        return {
            "total": total,
            "households": sorted((h["id"], h["admin_area_code"]) for h in households),
            "people": found,
            "coverage": json.loads(report.output)["rows"],
        }
    finally:
        runtime.close()


def test_a_restored_registry_answers_the_same_queries(
    tmp_path: Path, two_databases: tuple[str, str]
) -> None:
    source_url, target_url = two_databases
    origin = _env(tmp_path / "origin", source_url)
    _fill(origin)
    before = _answers(origin)

    made = srhub(
        origin, "backup", "--to", str(tmp_path / "archives"), "--keys-to", str(tmp_path / "keys")
    )
    assert made.exit_code == 0, made.output
    summary = json.loads(made.output)
    archive = Path(summary["archive"])
    assert archive.name.startswith(ARCHIVE_PREFIX) and summary["rows"] > 0
    with tarfile.open(archive) as tar:  # the keys never travel with the data
        names = tar.getnames()
        assert "keys.json" not in names and len(names) == 2
        for member in names:
            body = tar.extractfile(member)
            assert body is not None
            raw = body.read()
            for key in json.loads((tmp_path / "keys" / "keys.json").read_text()).values():
                assert key.encode() not in raw
    assert oct((tmp_path / "keys" / "keys.json").stat().st_mode & 0o777) == "0o600"

    # A second machine: no keys yet, so the sealed identifiers could not be read: refused.
    elsewhere = _env(tmp_path / "elsewhere", target_url)
    refused = srhub(elsewhere, "restore", str(archive))
    assert refused.exit_code == 1 and "--keys-from" in refused.output
    restored = srhub(elsewhere, "restore", str(archive), "--keys-from", str(tmp_path / "keys"))
    assert restored.exit_code == 0, restored.output
    assert _answers(elsewhere) == before

    # Once a registry is there, a restore overwrites it only when told to.
    again = srhub(elsewhere, "restore", str(archive))
    assert again.exit_code == 1 and "--replace" in again.output

    # Back on the first machine: a change after the backup is undone by a --replace restore.
    runtime = HubRuntime(load_settings(env=origin))
    try:
        person = runtime.registry.find_person_by_identifier("national_id", NATIONAL_IDS[0])
        assert person is not None
        runtime.registry.update_person(
            person["id"], {"given_name": "Changed"}, Source("field_survey")
        )
    finally:
        runtime.close()
    assert _answers(origin) != before
    replaced = srhub(origin, "restore", str(archive), "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert _answers(origin) == before


def test_a_restore_refuses_other_keys_and_a_damaged_archive(tmp_path: Path) -> None:
    origin = _env(tmp_path / "origin", "")
    _fill(origin)
    archive = make_backup(load_settings(env=origin), tmp_path / "archives").archive

    # Another hub with keys of its own: its keys would not unseal this backup.
    other = _env(tmp_path / "other", "")
    assert srhub(other, "db", "upgrade").exit_code == 0  # creates that hub's own keys
    refused = srhub(other, "restore", str(archive), "--replace")
    assert refused.exit_code == 1 and "fingerprints differ" in refused.output

    # One flipped byte in the dump: the checksum catches it before anything is written.
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as tar, tarfile.open(damaged, "w") as out:
        for info in tar.getmembers():
            body = tar.extractfile(info)
            assert body is not None
            raw = bytearray(body.read())
            if info.name.startswith("database"):
                raw[len(raw) // 2] ^= 0xFF
            import io

            out.addfile(info, io.BytesIO(bytes(raw)))
    fresh = _env(tmp_path / "fresh", "")
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "keys.json").write_text((tmp_path / "origin" / "keys.json").read_text())
    bad = srhub(fresh, "restore", str(damaged))
    assert bad.exit_code == 1 and "damaged" in bad.output
    assert not (tmp_path / "fresh" / "srhub.db").exists()

    # A SQLite backup is not poured into PostgreSQL (or the other way round).
    with pytest.raises(BackupError, match="same kind of database"):
        from hub.backup import restore_backup

        restore_backup(
            load_settings(env=_env(tmp_path / "fresh", "postgresql://nobody@127.0.0.1:1/none")),
            archive,
        )


def test_keep_prunes_the_oldest_archives_only(tmp_path: Path) -> None:
    origin = _env(tmp_path / "origin", "")
    assert srhub(origin, "db", "upgrade").exit_code == 0
    settings = load_settings(env=origin)
    start = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    made = [
        make_backup(settings, tmp_path / "archives", keep=3, now=start + timedelta(days=day))
        for day in range(5)
    ]
    left = sorted(p.name for p in (tmp_path / "archives").glob(f"{ARCHIVE_PREFIX}*"))
    assert left == sorted(m.archive.name for m in made[-3:])
    assert [p.name for p in made[-1].removed] == [made[1].archive.name]
    with pytest.raises(BackupError, match="at least 1"):
        make_backup(settings, tmp_path / "archives", keep=0)


@pytest.mark.postgres
def test_a_backup_taken_under_writes_counts_exactly_what_it_dumped(tmp_path: Path) -> None:
    """Households keep arriving while pg_dump runs: the manifest's counts and the dump share
    one snapshot, so the restore's row check passes; counted apart, they would differ."""
    import threading

    with (
        fresh_postgres_database("srhub_bk_live") as live_url,
        fresh_postgres_database("srhub_bk_copy") as copy_url,
    ):
        origin = _env(tmp_path / "origin", live_url)
        _fill(origin)
        stop = threading.Event()
        written: list[int] = []

        def keep_writing() -> None:
            runtime = HubRuntime(load_settings(env=origin))
            try:
                while not stop.is_set():
                    runtime.registry.register_household(
                        {
                            "admin_area_code": "R02-D01",
                            "members": [
                                {
                                    "given_name": f"Live{len(written)}",
                                    "family_name": "Writer",
                                    "sex": "male",
                                    "birth_date": "1990-01-01",
                                    "relationship": "head",
                                }
                            ],
                        },
                        Source("field_survey"),
                    )
                    written.append(1)
            finally:
                runtime.close()

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            while len(written) < 3:  # the writer is in full swing before the backup starts
                threading.Event().wait(0.05)
            before = len(written)
            result = make_backup(load_settings(env=origin), tmp_path / "archives")
            during = len(written) - before
        finally:
            stop.set()
            writer.join()
        assert during > 0  # the registry changed while it was being dumped
        elsewhere = _env(tmp_path / "elsewhere", copy_url)
        restored = srhub(
            elsewhere,
            "restore",
            str(result.archive),
            "--keys-from",
            str(_export_keys(origin, tmp_path / "keys")),
        )
        assert restored.exit_code == 0, restored.output
        # the snapshot saw every household written before the backup began, and none after
        assert 3 + before <= result.manifest.table_rows["households"] <= 3 + len(written)


def _export_keys(env: dict[str, str], folder: Path) -> Path:
    from hub.backup.keys import export_keys

    export_keys(load_settings(env=env), folder)
    return folder
