"""The embedded queue shares the registry's database, so what it holds is sealed: a partner
record carrying a national ID is never in clear in the queue table, and reads back intact."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from hub.broker import QueueSpec, connect
from hub.broker.base import EXCHANGE_INBOUND, Message
from hub.settings import load_settings
from registry_core.db import make_engine


def test_queue_bodies_are_sealed_at_rest_and_read_back(db_url: str, tmp_path: Path):
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path)
    body = b'{"NATIONAL_ID": "5551234567", "name": "Wanjiru Kamau"}'
    queue = QueueSpec("sealing.test", [(EXCHANGE_INBOUND, "sealing.#")])
    with connect(settings) as broker:
        broker.declare_topology([queue])
        broker.publish(EXCHANGE_INBOUND, [Message(body, "sealing.row", "m-1")])
        engine = make_engine(db_url)
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT body FROM sr_broker_messages")).scalars().all()
        engine.dispose()
        assert stored and all(b"5551234567" not in bytes(s) for s in stored)
        consumer = broker.open_consumer("sealing.test")
        delivery = consumer.receive(5)
        assert delivery is not None and delivery.message.body == body
        consumer.ack(delivery)
        consumer.close()
    # A plain client (no keys) still reads what it wrote itself.
    with connect(db_url) as plain:
        plain.publish(EXCHANGE_INBOUND, [Message(b"plain", "sealing.row", "m-2")])
        consumer = plain.open_consumer("sealing.test")
        delivery = consumer.receive(5)
        assert delivery is not None and delivery.message.body == b"plain"
        consumer.ack(delivery)
        consumer.close()
