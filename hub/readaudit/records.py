"""What a read touched and why: the value objects the read paths hand to the log.

Kept free of Flask and of the database so the DCI server, the API, FHIR and the dashboard
build the same ``ReadEntry`` the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.auth.roles import Principal

UNSPECIFIED = "unspecified"
MAX_PURPOSE_LENGTH = 64
# A purpose is a code (``social-assistance``, ``eligibility:pmt``), never free text: it is
# shown to auditors and filtered on, and must not carry personal data.
PURPOSE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
CHANNELS = ("api", "dci", "fhir", "ui")


class InvalidPurpose(ValueError):
    """A purpose that is not a short code; the message says what is accepted."""


def clean_purpose(text: str | None) -> str | None:
    """``text`` as a purpose code, None when empty; InvalidPurpose when it is not a code."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    if not PURPOSE_PATTERN.fullmatch(value):
        raise InvalidPurpose(
            "a purpose of use is a code of at most 64 letters, digits and . _ : / - "
            "(e.g. social-assistance)"
        )
    return value


@dataclass(frozen=True)
class ReadRecords:
    """The registry ids a read returned (``count`` may exceed the ids kept)."""

    household_ids: tuple[str, ...] = ()
    person_ids: tuple[str, ...] = ()
    count: int = 0

    @classmethod
    def of_households(cls, records: Iterable[Mapping[str, Any]]) -> ReadRecords:
        """Households as the registry reads them: their ids and their members' ids."""
        households: list[str] = []
        persons: list[str] = []
        for record in records:
            households.append(str(record["id"]))
            persons.extend(str(m["id"]) for m in record.get("members", ()) if m.get("id"))
        return cls(tuple(households), tuple(persons), len(households))

    @classmethod
    def of_persons(cls, records: Iterable[Mapping[str, Any]]) -> ReadRecords:
        persons = tuple(str(r["id"]) for r in records)
        return cls((), persons, len(persons))

    @classmethod
    def found_in(cls, answer: Any) -> ReadRecords:
        """The households and persons an answer names, wherever they sit in it: values of
        keys ending in ``household_id`` / ``person_id`` (``left_person_id``,
        ``mother_person_id``, ...) or ``person_ids``, and the ids of ``members``. For the
        routes whose answers are about people without being household or person records
        (change requests, consents, review items, match reviews, quality issues)."""
        households: dict[str, None] = {}
        persons: dict[str, None] = {}
        stack = [answer]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
                continue
            if not isinstance(node, Mapping):
                continue
            for key, value in node.items():
                if isinstance(value, str) and value:
                    if key.endswith("household_id"):
                        households[value] = None
                    elif key.endswith("person_id"):
                        persons[value] = None
                elif key == "person_ids" and isinstance(value, list):
                    persons.update((str(v), None) for v in value if v)
                elif key == "members" and isinstance(value, list):
                    persons.update(
                        (str(m["id"]), None)
                        for m in value
                        if isinstance(m, Mapping) and m.get("id")
                    )
                    stack.extend(value)
                elif isinstance(value, (Mapping, list)):
                    stack.append(value)
        return cls(tuple(households), tuple(persons), len(households) or len(persons))

    def __bool__(self) -> bool:
        return bool(self.household_ids or self.person_ids or self.count)


@dataclass(frozen=True)
class ReadEntry:
    """One read, as the log records it (``hub.readaudit.tables.ReadAuditRow``)."""

    subject: str
    roles: tuple[str, ...]
    program: str | None
    channel: str
    route: str
    purpose: str = UNSPECIFIED
    query_kind: str = ""
    records: ReadRecords = field(default_factory=ReadRecords)

    @classmethod
    def by(
        cls,
        principal: Principal,
        channel: str,
        route: str,
        records: ReadRecords,
        purpose: str | None = None,
        query_kind: str = "",
    ) -> ReadEntry:
        return cls(
            subject=principal.subject,
            roles=tuple(sorted(r.value for r in principal.roles)),
            program=principal.program,
            channel=channel,
            route=route,
            purpose=purpose or UNSPECIFIED,
            query_kind=query_kind,
            records=records,
        )
