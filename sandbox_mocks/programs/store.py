"""The program MIS's beneficiary lists: in memory, thread-safe, paged the way the MIS pages.

Records use the MIS's own vocabulary (``beneficiaryNo``, ``enrolledOn``, ``ACTIVE``/``EXITED``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from datetime import date
from typing import Any

from sandbox_mocks.programs.catalogue import PROGRAMS, Program

ACTIVE, EXITED = "ACTIVE", "EXITED"
STATUSES = (ACTIVE, EXITED)


class ProgramNotFoundError(LookupError):
    pass


class BeneficiaryNotFoundError(LookupError):
    pass


class AlreadyEnrolledError(Exception):
    """The person (or one member of the household) is already an active beneficiary."""

    def __init__(self, existing: dict[str, Any]) -> None:
        super().__init__(existing["beneficiaryNo"])
        self.existing = existing


class BeneficiaryStore:
    def __init__(
        self,
        initial: Mapping[str, list[dict[str, Any]]],
        currency: str,
        today: date,
        programs: tuple[Program, ...] = PROGRAMS,
    ) -> None:
        self._lock = threading.Lock()
        self._programs = {p.code: p for p in programs}
        self._currency = currency
        self._today = today
        self._lists: dict[str, list[dict[str, Any]]] = {code: [] for code in self._programs}
        self._by_number: dict[str, dict[str, Any]] = {}
        for code, records in initial.items():
            for record in records:
                self._add(code, dict(record), source="initial_load")

    # ------------------------------------------------------------------ reading
    def programs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                program.to_json(self._currency, self._active_count(code))
                for code, program in self._programs.items()
            ]

    def program(self, code: str) -> dict[str, Any]:
        program = self._program(code)
        with self._lock:
            return program.to_json(self._currency, self._active_count(code))

    def page(
        self,
        code: str,
        page: int,
        page_size: int,
        status: str | None = None,
        national_id: str | None = None,
    ) -> dict[str, Any]:
        self._program(code)
        with self._lock:
            items = [
                b
                for b in self._lists[code]
                if (status is None or b["status"] == status)
                and (national_id is None or national_id in _ids(b))
            ]
            total = len(items)
            start = (page - 1) * page_size
            chosen = [dict(b) for b in items[start : start + page_size]]
        pages = max(1, math.ceil(total / page_size))
        return {
            "programCode": code,
            "page": page,
            "pageSize": page_size,
            "totalItems": total,
            "totalPages": pages,
            "hasNext": page < pages,
            "items": chosen,
        }

    def get(self, code: str, number: str) -> dict[str, Any]:
        self._program(code)
        with self._lock:
            found = self._by_number.get(number)
            if found is None or found["programCode"] != code:
                raise BeneficiaryNotFoundError(number)
            return dict(found)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {code: self._active_count(code) for code in self._programs}

    # ------------------------------------------------------------------ writing
    def enrol(self, code: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Add an active beneficiary; refuses a person already active in the program."""
        self._program(code)
        wanted = {body["nationalId"], *body.get("memberNationalIds", [])}
        with self._lock:
            for existing in self._lists[code]:
                if existing["status"] == ACTIVE and wanted & _ids(existing):
                    raise AlreadyEnrolledError(dict(existing))
            record = {
                "nationalId": body["nationalId"],
                "householdRef": body.get("householdRef"),
                "memberNationalIds": list(body.get("memberNationalIds", [body["nationalId"]])),
                "fullName": body.get("fullName"),
                "externalRef": body.get("externalRef"),
                "enrolledOn": body.get("enrolledOn") or self._today.isoformat(),
            }
            return dict(self._add(code, record, source="api"))

    def exit(self, code: str, number: str, reason: str) -> dict[str, Any]:
        self._program(code)
        with self._lock:
            found = self._by_number.get(number)
            if found is None or found["programCode"] != code:
                raise BeneficiaryNotFoundError(number)
            found["status"] = EXITED
            found["exitReason"] = reason
            found["exitedOn"] = self._today.isoformat()
            return dict(found)

    # ---------------------------------------------------------------- internals
    def _program(self, code: str) -> Program:
        program = self._programs.get(code)
        if program is None:
            raise ProgramNotFoundError(code)
        return program

    def _active_count(self, code: str) -> int:
        return sum(1 for b in self._lists[code] if b["status"] == ACTIVE)

    def _add(self, code: str, record: dict[str, Any], source: str) -> dict[str, Any]:
        program = self._programs[code]
        number = f"{code}-{len(self._lists[code]) + 1:06d}"
        record.update(
            {
                "beneficiaryNo": number,
                "programCode": code,
                "enrolmentUnit": program.unit,
                "status": ACTIVE,
                "benefit": {
                    "amount": program.benefit_amount,
                    "currency": self._currency,
                    "frequency": program.benefit_frequency,
                },
                "source": source,
            }
        )
        self._lists[code].append(record)
        self._by_number[number] = record
        return record


def _ids(record: Mapping[str, Any]) -> set[str]:
    ids = set(record.get("memberNationalIds") or [])
    if record.get("nationalId"):
        ids.add(record["nationalId"])
    return ids
