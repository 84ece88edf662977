"""A third-party connector plugin, installed with pip, ingests without any change to the hub.

The package (``tests/fixtures/plugin_package``: its own ``pyproject.toml`` with an entry point
in ``srhub.connectors``, a connector class declaring its own record type, its own mapping spec
inside the package) is built into a wheel and installed with ``pip install --target`` into a
folder of the test's own, which only the hub's subprocess gets on its path: nothing is left in
the project's environment. ``srhub run`` then runs TWO instances of it from a connectors file
against a partner API served here; their records go through the real ingest worker (embedded
broker) into the registry, with the plugin's kind as their source, and a broken record of one
instance is dead-lettered with its reason while the good ones land.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, request
from sqlalchemy import select
from werkzeug.serving import make_server

from hub.broker import connect
from hub.broker.base import H_ERROR_CLASS, H_ORIGINAL_ROUTING_KEY, H_REASON, QUEUE_DEAD
from hub.runtime import HubRuntime
from hub.sandbox_seed import seed_registry
from hub.settings import load_settings
from registry_core.models import SocioEconomicAttribute
from sandbox_mocks.population import iter_households

PLUGIN_SOURCE = Path(__file__).parents[1] / "fixtures" / "plugin_package"


# ---------------------------------------------------------------------------- the package


def build_wheel(source: Path, out: Path) -> Path:
    """A wheel of the package at ``source``, from its own pyproject.toml (name, version, entry
    points) and its package folders (code and data files alike).

    Built here rather than by a build backend so the test needs nothing beyond pip: a wheel is
    a zip with a ``.dist-info`` folder (PEP 427), and pip installs it like any other."""
    project = tomllib.loads((source / "pyproject.toml").read_text("utf-8"))["project"]
    dist = f"{project['name'].replace('-', '_')}-{project['version']}"
    files: dict[str, bytes] = {}
    for package in sorted(p.parent for p in source.glob("*/__init__.py")):
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(source).as_posix()] = path.read_bytes()
    info = f"{dist}.dist-info"
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in table.items())
        for group, table in project.get("entry-points", {}).items()
    )
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    ).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: srhub-tests\n"
    files[f"{info}/WHEEL"] += b"Root-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = out / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin installed by pip into a folder of its own (not the project's environment)."""
    work = tmp_path_factory.mktemp("plugin")
    wheel = build_wheel(PLUGIN_SOURCE, work)
    site = work / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-cache-dir"]
    installed = subprocess.run(
        [*pip, "--target", site, wheel],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (site / "srhub_disability" / "specs" / "disability_assessment.toml").is_file()
    return site


def test_the_plugin_is_not_installed_in_the_test_process(plugin_site: Path):
    """Installed for the hub's subprocess only: this process does not see it."""
    from connectors.base.registry import available_connectors

    assert "disability" not in available_connectors()
    assert str(plugin_site) not in sys.path


# ---------------------------------------------------------------------------- the partner


class DisabilityRegistry:
    """The partner's API: ``GET /<region>/assessments?after=&limit=`` pages through a list."""

    def __init__(self) -> None:
        self.lists: dict[str, list[dict[str, Any]]] = {"north": [], "south": []}
        self.calls: list[str] = []
        app = Flask("disability_registry")

        @app.get("/<region>/assessments")
        def assessments(region: str) -> Any:
            self.calls.append(region)
            items = self.lists[region]
            after = int(request.args.get("after", 0))
            limit = int(request.args.get("limit", 100))
            page = items[after : after + limit]
            return jsonify(items=page, next=after + len(page), more=after + len(page) < len(items))

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def partner() -> Iterator[DisabilityRegistry]:
    registry = DisabilityRegistry()
    try:
        yield registry
    finally:
        registry.server.shutdown()


# ---------------------------------------------------------------------------- the hub


class Hub:
    """``srhub run`` in a subprocess; its output drained by a thread so it never blocks."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "run", "--port", "0", "--no-sandbox"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.reader.join(10)
        return code


def wait_until(check: Callable[[], Any], hub: Hub, what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert hub.process.poll() is None, f"srhub run exited:\n{hub.output}"
        assert time.monotonic() < deadline, f"{what} not reached:\n{hub.output}"
        time.sleep(0.3)


def national_ids(runtime: HubRuntime, count: int) -> list[str]:
    """National IDs of registered living people, as the registry holds them."""
    households, _ = runtime.registry.list_households(limit=100)
    found = [
        identifier["value"]
        for household in households
        for member in household["members"]
        for identifier in member.get("identifiers", [])
        if identifier["system"] == "national_id" and not member.get("is_deceased")
    ]
    assert len(found) >= count
    return found[:count]


def assessment(ident: str, nin: str, level: str, **more: Any) -> dict[str, Any]:
    return {
        "assessmentId": ident,
        "person": {"nationalId": nin},
        "assessedOn": "2025-03-01",
        "functionalLevel": level,
        **more,
    }


def test_two_instances_of_an_installed_plugin_ingest_into_the_registry(
    db_url: str, tmp_path: Path, plugin_site: Path, partner: DisabilityRegistry
):
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path / "var", sandbox=False)
    runtime = HubRuntime(settings)
    try:
        runtime.registry.ensure_identifier_systems()
        assert seed_registry(runtime.registry, iter_households(5, 60)) > 5
        first, second, third, fourth = national_ids(runtime, 4)
    finally:
        runtime.close()
    partner.lists["north"] = [
        assessment("DA-N-1", first, "MILD", reviewDue="2026-03-01"),
        assessment("DA-N-2", second, "moderate"),
    ]
    partner.lists["south"] = [
        assessment("DA-S-1", third, "SEVERE"),
        {"assessmentId": "DA-S-2", "person": {"nationalId": fourth}},  # no functional level
        assessment("DA-S-3", "ZZ00000000", "MILD"),  # nobody the registry knows
    ]
    connectors_file = tmp_path / "connectors.toml"
    connectors_file.write_text(
        "".join(
            f'[connectors.disability_{region}]\nkind = "disability"\n'
            f'base_url = "{partner.url}/{region}"\npoll_interval_seconds = 3600\n\n'
            for region in ("north", "south")
        ),
        "utf-8",
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SRHUB_")},
        "SRHUB_DATABASE_URL": db_url,
        "SRHUB_DATA_DIR": str(tmp_path / "var"),
        "SRHUB_CONNECTORS_FILE": str(connectors_file),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(plugin_site), os.environ.get("PYTHONPATH", "")) if p
        ),
        "PYTHONUNBUFFERED": "1",
    }
    runtime = HubRuntime(settings)
    hub = Hub(env, tmp_path)
    try:
        wait_until(lambda: "srhub: ready" in hub.output, hub, "start")

        def facts() -> dict[tuple[str | None, str], Any]:
            with runtime.sessions() as session:
                rows = session.scalars(
                    select(SocioEconomicAttribute).where(
                        SocioEconomicAttribute.source_system == "disability"
                    )
                ).all()
                return {(r.source_record_id, r.name): r.value for r in rows}

        wait_until(lambda: len(facts()) == 6, hub, "the assessments in the registry")
        broker = connect(settings)
        try:
            wait_until(lambda: broker.queue_depth(QUEUE_DEAD) == 1, hub, "the dead letter")
            consumer = broker.open_consumer(QUEUE_DEAD, prefetch=1)
            letter = consumer.receive(5)
            assert letter is not None
            consumer.ack(letter)
            consumer.close()
        finally:
            broker.close()
        found = facts()
        person = runtime.registry.find_person_by_identifier("national_id", third)
        household = runtime.registry.get_household(person["memberships"][-1]["household_id"])
    finally:
        code = hub.stop()
        runtime.close()
    output = hub.output
    assert code == 0, output
    assert "srhub: connectors running: disability_north, disability_south" in output
    assert "NOT running" not in output
    # Both instances' records landed, mapped by the plugin's own spec (the hub's transforms
    # and hooks), asserted by the plugin's kind, each with the partner's record id.
    assert found == {
        ("DA-N-1", "disability_level"): "mild",
        ("DA-N-1", "disability_permanent"): False,
        ("DA-N-2", "disability_level"): "moderate",
        ("DA-N-2", "disability_permanent"): True,
        ("DA-S-1", "disability_level"): "severe",
        ("DA-S-1", "disability_permanent"): True,
    }
    assert {(a["name"], a["value"]) for a in household["attributes"] if a["domain"] == "other"} >= {
        ("disability_level", "severe"),
        ("disability_permanent", True),
    }
    # The broken record of the second instance: dead-lettered with the reason, naming its
    # routing key (the instance) and the plugin's spec and field.
    headers = letter.message.headers
    assert headers[H_ORIGINAL_ROUTING_KEY] == "disability_south.assessment"
    assert headers[H_ERROR_CLASS] == "MappingError"
    reason = headers[H_REASON]
    assert '"spec": "disability_assessment"' in reason
    assert '"source_path": "$.functionalLevel"' in reason
    assert set(partner.calls) == {"north", "south"}
    assert not re.search(r"Traceback", output), output
