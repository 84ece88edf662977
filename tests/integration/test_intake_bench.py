"""``python -m bench.intake`` runs end to end in a short smoke mode (50 submissions) on
PostgreSQL, with RabbitMQ and with the embedded broker, and ends with its one summary line:
every submission applied once, the re-sent ones answered 202."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import amqp_url_or_skip, postgres_url_or_skip, unique_name

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"intake submissions_per_s=(?P<rate>[\d.]+) p99_ms=(?P<p99>[\d.]+) "
    r"health_per_s=(?P<health>\d+)(?P<rest>( [a-z_0-9]+=[^ ]+)*)"
)


def run_bench(broker: str, amqp_url: str = "") -> dict[str, str]:
    from sqlalchemy.engine import make_url

    database = make_url(postgres_url_or_skip()).set(database=unique_name("srhub_bench"))
    env = {
        **os.environ,
        "SRHUB_BENCH_DATABASE_URL": database.render_as_string(hide_password=False),
        "SRHUB_BENCH_AMQP_URL": amqp_url,
    }
    command = [sys.executable, "-m", "bench.intake", "--submissions", "50"]
    command += ["--concurrency", "4", "--health-seconds", "1", "--broker", broker]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    match = LINE.fullmatch(lines[-1])
    assert match, lines[-1]
    assert sum(line.startswith("intake submissions_per_s=") for line in lines) == 1
    fields = dict(part.split("=", 1) for part in lines[-1].split()[1:])
    assert float(match["rate"]) > 0 and float(match["p99"]) > 0 and int(match["health"]) > 0
    return fields


def assert_all_landed_once(fields: dict[str, str]) -> None:
    assert fields["lost"] == "0" and fields["doubled"] == "0", fields
    assert fields["applied"] == "50" and fields["households"] == "50", fields
    assert fields["resent_202"] == "50" and fields["errors"] == "0", fields
    assert fields["auth"] == "digest"
    assert float(fields["applied_per_s"]) > 0


@pytest.mark.postgres
@pytest.mark.amqp
def test_the_bench_on_rabbitmq_lands_every_submission_once() -> None:
    fields = run_bench("amqp", amqp_url_or_skip())
    assert_all_landed_once(fields)
    assert fields["broker"] == "amqp" and float(fields["raw_publish_per_s"]) > 0


@pytest.mark.postgres
def test_the_bench_on_the_embedded_broker_lands_every_submission_once() -> None:
    fields = run_bench("embedded")
    assert_all_landed_once(fields)
    assert fields["broker"] == "embedded" and "raw_publish_per_s" not in fields
