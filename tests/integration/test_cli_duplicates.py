"""``srhub duplicates scan|status`` (both databases): a scan from the shell queues the planted
pair with progress on stderr, a second scan proposes it no more, and status reads scans back."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from click.testing import CliRunner

from hub.cli import main
from hub.runtime import HubRuntime
from hub.settings import load_settings
from registry_core.service import Source


def test_scan_and_status_from_the_shell(db_url: str, tmp_path: Path) -> None:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path)
    runtime = HubRuntime(settings)
    try:
        registry = runtime.registry
        registry.ensure_identifier_systems()
        for source, area, family in (
            ("program_a", "KE-1", "Otieno"),
            ("program_b", "KE-2", "Otieeno"),
        ):
            registry.register_household(
                {
                    "admin_area_code": area,
                    "members": [
                        {
                            "given_name": "Achieng",
                            "family_name": family,
                            "birth_date": "1961-02-03",
                            "sex": "female",
                            "relationship": "head",
                        }
                    ],
                },
                Source(source),
            )
    finally:
        runtime.close()
    env = {"SRHUB_DATABASE_URL": db_url, "SRHUB_DATA_DIR": str(tmp_path)}
    cli = CliRunner()

    first = cli.invoke(main, ["duplicates", "scan"], env=env)
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert result["state"] == "done" and result["candidates_found"] == 1
    assert f"scan {result['id']}:" in first.stderr

    second = json.loads(cli.invoke(main, ["duplicates", "scan"], env=env).stdout.splitlines()[-1])
    assert second["candidates_found"] == 0 and second["already_known"] == 1

    listed = json.loads(cli.invoke(main, ["duplicates", "status"], env=env).stdout)
    assert [s["id"] for s in listed["items"]] == [second["id"], result["id"]]
    one = json.loads(cli.invoke(main, ["duplicates", "status", result["id"]], env=env).stdout)
    assert one["id"] == result["id"]
    unknown = cli.invoke(main, ["duplicates", "status", str(uuid.uuid4())], env=env)
    assert unknown.exit_code != 0 and "no duplicate scan" in unknown.stderr
    bad = cli.invoke(main, ["duplicates", "status", "yesterday"], env=env)
    assert bad.exit_code == 2 and "UUID" in bad.stderr
