"""Choosing the broker backend from settings: RabbitMQ when an AMQP URL is set, otherwise the
embedded queue in the hub's database, importing only the backend in use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hub.broker import BrokerError, backend_for, connect
from hub.settings import Settings


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "amqp"),
        ("AMQPS://user:pw@broker.example/prod", "amqps"),
        ("sqlite:///var/srhub.db", "embedded"),
        ("postgresql://root@127.0.0.1/test", "embedded"),
        ("postgresql+psycopg://root@127.0.0.1/test", "embedded"),
    ],
)
def test_backend_is_chosen_by_url_scheme(url: str, backend: str) -> None:
    assert backend_for(url) == backend


def test_settings_without_amqp_url_give_the_embedded_queue_without_pika(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from hub.broker import connect; "
        "from hub.settings import Settings; "
        f"b = connect(Settings(data_dir=Path({str(tmp_path)!r}))); "
        "print(type(b).__name__, 'pika' in sys.modules, b.status().state); b.close()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["EmbeddedBroker", "False", "closed"]


def test_settings_with_amqp_url_give_rabbitmq_and_connect_lazily() -> None:
    # Port 1 on loopback: nothing listens; creating the broker must not try to connect.
    broker = connect(Settings(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F"), wait_for=0)
    assert type(broker).__name__ == "AmqpBroker"
    assert broker.status().state == "closed"
    broker.close()


def test_empty_url_is_refused_with_a_reason() -> None:
    with pytest.raises(BrokerError, match="no broker configured"):
        connect("")
