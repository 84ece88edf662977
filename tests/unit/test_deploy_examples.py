"""The deployment examples under docs/deploy are kept true: every `srhub` command they start
exists with the options given, every file they mount is there (or its ``.example``), the
settings file loads, and the RabbitMQ policy covers every queue the hub declares."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from hub.broker.base import QUEUE_DEAD, delivery_queue_name
from hub.cli.root import main as srhub
from hub.settings import load_settings
from hub.workers.topology import WORKER_QUEUES

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"


def _parses(args: list[str]) -> None:
    """``srhub ARGS`` resolves to a command that accepts the options (nothing runs). The
    groups on the way take no options of their own here: each token before the command is a
    subcommand's name."""
    command: click.Command = srhub
    ctx = click.Context(srhub, info_name="srhub")
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"{args} names a group, not a command"
        name, rest = rest[0], rest[1:]
        found = command.get_command(ctx, name)
        assert found is not None, f"srhub has no command {name!r} ({args})"
        command = found
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=name, parent=ctx)
    command.make_context(command.name or "", rest, parent=ctx)


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def _hub_services() -> dict[str, list[str]]:
    services = _compose()["services"]
    return {
        name: service["command"]
        for name, service in services.items()
        if service.get("image") == "srhub:latest" and "command" in service
    }


def test_every_hub_service_of_the_compose_file_runs_a_real_srhub_command() -> None:
    commands = _hub_services()
    kinds = {c[1] for c in commands.values() if c[0] == "worker"}
    assert kinds == {"relay", "ingest", "dispatch", "crosscheck", "quality", "scoring"}
    assert {"api", "connectors", "migrate", "deliveries"} <= set(commands)
    for command in commands.values():
        _parses(command)


def test_every_file_the_compose_file_names_exists_or_has_its_example() -> None:
    compose = _compose()
    named = [secret["file"] for secret in compose["secrets"].values()]
    for service in compose["services"].values():
        named += [v.split(":")[0] for v in service.get("volumes", []) if v.startswith("./")]
        named += list(service.get("env_file", []))
    for name in named:
        path = DEPLOY / name
        if name.startswith("./secrets/"):
            example = {
                "rabbitmq-credentials.conf": DEPLOY / "rabbitmq" / "credentials.conf.example",
                "srhub.env": DEPLOY / "srhub.env.example",
            }.get(path.name)
            if example is not None:
                assert example.is_file(), f"{name} has no example at {example}"
            continue
        assert path.exists(), f"compose.yaml names {name}, which is missing"


def test_the_example_settings_load() -> None:
    settings = load_settings(env={"SRHUB_CONFIG": str(DEPLOY / "etc" / "srhub.toml")})
    assert settings.trusted_proxies == 1


def test_the_systemd_units_start_real_srhub_commands() -> None:
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert len(units) >= 5
    for unit in units:
        starts = re.findall(r"^ExecStart=\S*/srhub (.+)$", unit.read_text(), re.MULTILINE)
        assert starts, f"{unit.name} starts no srhub command"
        for line in starts:
            _parses(shlex.split(line.replace("%i", "ingest")))


def test_the_quorum_queue_policy_covers_every_queue_the_hub_declares() -> None:
    definitions = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
    (policy,) = definitions["policies"]
    assert policy["apply-to"] == "quorum_queues"
    assert policy["definition"]["overflow"] == "reject-publish"
    pattern = re.compile(policy["pattern"])
    names = [q.name for q in WORKER_QUEUES] + [QUEUE_DEAD, delivery_queue_name("program-a")]
    assert all(pattern.match(name) for name in names), names
    assert definitions["vhosts"][0]["metadata"]["default_queue_type"] == "quorum"


@pytest.mark.parametrize("bad", [["worker", "nonsense"], ["serve", "--no-such-flag"]])
def test_the_command_check_itself_refuses_what_srhub_would(bad: list[str]) -> None:
    with pytest.raises((AssertionError, click.UsageError, click.NoSuchOption)):
        _parses(bad)
