"""The sandbox launcher and ``srhub sandbox up``: every mock starts, answers, and stops."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import zeep
from zeep.exceptions import Fault
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from sandbox_mocks.launcher import (
    MOCK_NAMES,
    RunningSandbox,
    SandboxConfig,
    SandboxError,
    start_sandbox,
)
from sandbox_mocks.population.model import Person
from sandbox_mocks.programs import sign

ROOT = Path(__file__).resolve().parents[2]
ZERO_PORTS = dict.fromkeys(MOCK_NAMES, 0)


def _refused(url: str) -> bool:
    try:
        requests.get(url + "/health", timeout=2)
    except requests.ConnectionError:
        return True
    return False


def _verify_identity(wsdl: str, username: str, password: str, person: Person) -> object:
    client = zeep.Client(
        wsdl,
        wsse=UsernameToken(username, password),
        transport=Transport(timeout=5, operation_timeout=5),
    )
    return client.service.VerifyIdentity(
        transactionID="launcher-test-1",
        individualId=person.national_id,
        individualIdType="UIN",
        consentObtained=True,
        requestTime=datetime.now(UTC),
        demographics={
            "name": f"{person.given_name} {person.family_name}",
            "dob": person.birth_date,
        },
    )


def test_every_mock_starts_on_ephemeral_ports_and_answers(tmp_path: Path) -> None:
    config = SandboxConfig(
        people=60, seed=7, ports=dict(ZERO_PORTS), work_dir=tmp_path, tax_interval_seconds=0
    )
    with start_sandbox(config) as sandbox:
        assert set(sandbox.running) == set(MOCK_NAMES)
        assert all(
            info.port and info.port not in (8101, 8102, 8103, 8104, 8105)
            for info in sandbox.running.values()
        )
        conf = tomllib.loads(sandbox.connectors_file.read_text("utf-8"))
        assert stat.S_IMODE(os.stat(sandbox.connectors_file).st_mode) == 0o600
        connectors = conf["connectors"]
        assert connectors == sandbox.connectors()
        assert conf["sandbox"] == conf["sandbox"] | {"seed": 7, "people": 60}
        for name in MOCK_NAMES:
            assert connectors[name]["url"] == sandbox.url(name)
            assert requests.get(sandbox.url(name) + "/health", timeout=5).status_code == 200

        # national ID: the SOAP credentials written to the file are the ones the mock accepts
        nid = connectors["national_id"]
        assert nid["wsdl_url"] == sandbox.url("national_id") + "/soap/national-id?wsdl"
        person = next(p for h in sandbox.households for p in h.members if p.national_id)
        answer = _verify_identity(nid["wsdl_url"], nid["username"], nid["password"], person)
        assert answer.transactionID == "launcher-test-1"
        with pytest.raises(Fault):
            _verify_identity(nid["wsdl_url"], nid["username"], "wrong", person)

        # tax: the drop folder in the file is where the mock drops
        tax = connectors["tax"]
        status = requests.get(tax["status_url"], timeout=5).json()
        assert status["drop_folder"] == tax["drop_folder"] and status["drop_count"] == 1
        assert list(Path(tax["drop_folder"]).glob(tax["manifest_glob"]))

        # civil registry: the DCI token in the file opens its DCI API (and nothing else does)
        crvs = connectors["civil_registry"]
        search = {"header": {}, "message": {}}
        refused = requests.post(crvs["dci_base_url"] + "/sync/search", json=search, timeout=5)
        allowed = requests.post(
            crvs["dci_base_url"] + "/sync/search",
            json=search,
            timeout=5,
            headers={"Authorization": f"Bearer {crvs['dci_bearer_token']}"},
        )
        assert refused.status_code == 401 and allowed.status_code != 401

        # GIS answers its API
        areas = requests.get(sandbox.url("gis") + "/gis/v1/areas", timeout=5)
        assert areas.status_code == 200

        # program MIS: the webhook secret in the file verifies
        programs = connectors["programs"]
        body = b'{"type": "org.socialregistry.person.died"}'
        requests.post(
            programs["webhook_url"],
            data=body,
            timeout=5,
            headers={programs["webhook_signature_header"]: sign(programs["webhook_secret"], body)},
        )
        log = requests.get(programs["notifications_url"], timeout=5).json()
        assert log["items"][0]["signature"]["verified"] is True
        listed = requests.get(programs["base_url"] + "/programs", timeout=5).json()
        assert sum(p["activeBeneficiaries"] for p in listed["programs"]) > 0
        urls = {name: sandbox.url(name) for name in MOCK_NAMES}
    assert all(_refused(url) for url in urls.values())  # stopped: nothing listens any more


def test_a_missing_mock_stops_the_start_naming_its_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken installation is not a smaller sandbox: the start stops, naming the module,
    and the mocks already serving are stopped."""
    monkeypatch.setitem(sys.modules, "sandbox_mocks.gis", None)  # as if not installed
    stopped: list[list[str]] = []
    original_stop = RunningSandbox.stop

    def stop(self: RunningSandbox) -> None:
        stopped.append(sorted(self.servers))
        original_stop(self)

    monkeypatch.setattr(RunningSandbox, "stop", stop)
    config = SandboxConfig(
        people=20,
        ports=dict(ZERO_PORTS),
        work_dir=tmp_path,
        only=["tax", "gis"],
        tax_interval_seconds=0,
    )
    with pytest.raises(ModuleNotFoundError) as caught:
        start_sandbox(config)
    assert caught.value.name == "sandbox_mocks.gis"
    assert stopped == [["tax"]]
    assert not (tmp_path / "connectors.toml").exists()


def test_a_busy_port_gives_an_actionable_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        config = SandboxConfig(
            people=20,
            ports={**ZERO_PORTS, "tax": port},
            work_dir=tmp_path,
            only=["programs", "tax"],
            tax_interval_seconds=0,
        )
        with pytest.raises(SandboxError, match="--tax-port"):
            start_sandbox(config)
    assert not (tmp_path / "connectors.toml").exists()


def _read_table(process: subprocess.Popen[str], deadline: float) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("sandbox running"):
            return rows
        parts = line.split()
        if parts and parts[0] in MOCK_NAMES:
            rows[parts[0]] = parts
    raise AssertionError(f"no table; stderr: {process.stderr.read() if process.stderr else ''}")


def test_srhub_sandbox_up_serves_until_sigterm(tmp_path: Path) -> None:
    ports = [arg for name in MOCK_NAMES for arg in (f"--{name.replace('_', '-')}-port", "0")]
    command = [
        sys.executable,
        "-m",
        "hub.cli",
        "sandbox",
        "up",
        "--people",
        "40",
        "--seed",
        "3",
        "--work-dir",
        str(tmp_path),
        "--tax-interval",
        "0",
        *ports,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("SRHUB_AMQP_URL", None)
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        rows = _read_table(process, time.monotonic() + 60)
        assert set(rows) == set(MOCK_NAMES)
        for name, (_, status, url, *_rest) in rows.items():
            assert status == "running", name
            assert requests.get(url + "/health", timeout=5).status_code == 200
        conf = tomllib.loads((tmp_path / "connectors.toml").read_text("utf-8"))
        assert conf["connectors"]["programs"]["url"] == rows["programs"][2]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "sandbox stopped" in out
    assert all(_refused(parts[2]) for parts in rows.values())
