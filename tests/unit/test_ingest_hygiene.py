"""A connector's mapped record holding NaN, a NUL or a bidi override is dead-lettered with its
paths before the registry is touched (issue 17): never a crashed statement or a worker retry."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

from hub.pipeline import ingest
from hub.pipeline.apply import IngestContext
from hub.pipeline.routes import Route
from hub.workers.errors import PermanentError


class _Spec:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def map(self, _source: Any, _profile: Any) -> Any:
        return SimpleNamespace(record=self.record, notes=())


def _handle(monkeypatch: pytest.MonkeyPatch, record: dict[str, Any]) -> list[dict[str, Any]]:
    applied: list[dict[str, Any]] = []

    def applier(_registry: Any, mapped: dict[str, Any], _ctx: IngestContext) -> str:
        applied.append(mapped)
        return "applied"

    monkeypatch.setattr(ingest, "load_spec", lambda _name: _Spec(record))
    route = Route("partner", "fact", "partner", "any_spec", lambda event: event["data"], applier)
    ctx = SimpleNamespace(
        delivery=SimpleNamespace(message=SimpleNamespace(routing_key="partner.fact")),
        session=None,
    )
    registry = SimpleNamespace(identifier_profile=None)
    event = {"id": "m1", "data": {"source_id": "row-1"}}
    ingest._handle(event, ctx, {"partner.fact": route}, registry, [])  # type: ignore[arg-type]
    return applied


def test_nan_in_a_connectors_mapped_record_is_dead_lettered_with_its_path(monkeypatch):
    record = {
        "subject": {"given_name": "Amina\u202e", "family_name": "Oti\x00eno"},
        "attributes": [{"domain": "income", "name": "gross_income", "value": math.nan}],
        "location": {"lat": math.inf, "lon": 36.8},
    }
    with pytest.raises(PermanentError) as refused:
        _handle(monkeypatch, record)
    reason = str(refused.value)
    assert refused.value.error_class == "SchemaViolation"
    for path in (
        "$.attributes[0].value",
        "$.location.lat",
        "$.subject.given_name",
        "$.subject.family_name",
    ):
        assert path in reason
    assert "Amina" not in reason and "Oti" not in reason  # reasons never echo values


def test_a_clean_mapped_record_is_applied(monkeypatch):
    record = {"attributes": [{"domain": "income", "name": "gross_income", "value": 5400.5}]}
    assert _handle(monkeypatch, record) == [record]
