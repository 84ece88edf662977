"""A separate ingest worker (``srhub worker ingest``) reaches the partners its verification
requests need: the connectors of the connectors file are built for look-ups, never started
(nothing polls, listens or subscribes from this process)."""

from __future__ import annotations

from pathlib import Path

from hub.assembly import outbound_connectors
from hub.runtime import HubRuntime
from hub.settings import load_settings
from sandbox_mocks.launcher import SANDBOX_IDENTIFIER_PROFILE, SandboxConfig, start_sandbox
from sandbox_mocks.population import iter_households


def test_the_worker_gets_the_national_id_connector_built_but_not_started(
    db_url: str, tmp_path: Path
) -> None:
    with start_sandbox(
        SandboxConfig(
            people=40,
            seed=42,
            ports={"national_id": 0},
            only=("national_id",),
            work_dir=tmp_path / "sandbox",
        )
    ) as sandbox:
        settings = load_settings(
            env={},
            database_url=db_url,
            data_dir=tmp_path / "var",
            sandbox=False,
            connectors_file=sandbox.connectors_file,
            identifier_profile=SANDBOX_IDENTIFIER_PROFILE,
        )
        runtime = HubRuntime(settings)
        host = outbound_connectors(settings, runtime)
        try:
            assert host is not None and host.problems == {}
            assert host.runners == {}  # built for look-ups only
            connector = host.connector("national_id")
            person = next(p for h in iter_households(42, 40) for p in h.members if p.national_id)
            answer = connector.verify(
                person.national_id,
                {"birth_date": person.birth_date.isoformat()},
                consent=True,
            )
            assert answer.person_status in ("alive", "deceased")
        finally:
            if host is not None:
                host.stop()
            runtime.close()
    empty = load_settings(env={}, database_url=db_url, data_dir=tmp_path / "v2", sandbox=False)
    bare = HubRuntime(empty)
    try:
        assert outbound_connectors(empty, bare) is None  # no connectors file, nothing to build
    finally:
        bare.close()
