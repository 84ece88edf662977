"""The program MIS connector: imports each program's beneficiary list, page by page.

The MIS pages its lists (``GET /programs/<code>/beneficiaries?page=&page_size=``) and has no
"changed since" filter; new enrolments are appended at the end of a list. So the checkpoint
keeps, per program, how many items were already imported (an offset, not a page number: a page
that was only partly full last time is fetched again and only its new items are published, and
a changed ``page_size`` setting does not skip anyone). One ``poll`` fetches one page; the runner
polls again while ``more`` is set, and the checkpoint is saved after each page is published, so
a partner that goes down mid-import resumes at the next page, with nothing lost.

Exits change records in place, which an append-only offset cannot see; so every
``full_sweep_seconds`` the offsets go back to zero and the lists are read again. Records that
did not change carry the same stable message id and are dropped by the ingest's idempotency
check; changed ones (now ``EXITED``) get through.

Every item is published raw as ``programs.enrollment`` (mapping spec ``program_enrollment``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

from connectors.base import (
    PollResult,
    PullConnector,
    RawRecord,
    RecordType,
    connector_settings_schema,
)
from connectors.base.errors import PartnerProtocolError

RECORD_TYPE = "enrollment"
_URL = {"type": "string", "pattern": "^https?://"}
_CODE = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"}

SETTINGS_SCHEMA: dict[str, Any] = connector_settings_schema(
    {
        "base_url": _URL,
        "url": _URL,
        "programs": {"type": "array", "items": _CODE, "uniqueItems": True},
        "page_size": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
        "full_sweep_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 30 * 86400,
            "default": 86400,
        },
        "poll_interval_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 86400,
            "default": 300,
        },
        # the sandbox launcher's [connectors.programs] section also describes where the hub
        # delivers notifications to this MIS; the dispatcher reads those, this connector not
        "webhook_url": _URL,
        "webhook_secret": {"type": "string"},
        "webhook_signature_header": {"type": "string"},
        "dci_notify_url": _URL,
        "notifications_url": _URL,
        "amqp_queue": {"type": "string"},
    },
)
SETTINGS_SCHEMA["anyOf"] = [{"required": ["base_url"]}, {"required": ["url"]}]


class ProgramsConnector(PullConnector):
    """Pulls beneficiary lists of every program (or the configured ones)."""

    name: ClassVar[str] = "programs"
    kind: ClassVar[str] = "programs"
    settings_schema: ClassVar[dict[str, Any]] = SETTINGS_SCHEMA
    record_types: ClassVar[Mapping[str, RecordType]] = {
        RECORD_TYPE: RecordType("program_enrollment", "json", "enrollment", "beneficiary"),
    }

    def __init__(self, settings: Mapping[str, Any], context: Any) -> None:
        super().__init__(settings, context)
        self.client = self.http(self.settings.get("base_url") or self.settings["url"])

    def close(self) -> None:
        self.client.session.close()

    # --- checkpoint ----------------------------------------------------------------------------

    def _start(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        """A checkpoint at the start of a pass over all programs; a new sweep (offsets back to
        zero) when none was made or the last one is older than ``full_sweep_seconds``."""
        now = self.context.clock.now()
        offsets: dict[str, int] = {}
        swept = now.isoformat()
        if previous is not None:
            offsets = {str(k): int(v) for k, v in dict(previous.get("offsets") or {}).items()}
            swept = str(previous.get("sweep_started_at") or swept)
            try:
                age = (now - datetime.fromisoformat(swept)).total_seconds()
            except ValueError:
                age = float("inf")
            if age >= float(self.settings["full_sweep_seconds"]):
                offsets, swept = {}, now.isoformat()
        return {
            "programs": self._programs(),
            "index": 0,
            "offsets": offsets,
            "sweep_started_at": swept,
        }

    def _programs(self) -> list[str]:
        configured = self.settings.get("programs")
        if configured:
            return list(configured)
        body = self.client.get_json("programs")
        listed = body.get("programs") if isinstance(body, dict) else None
        if not isinstance(listed, list):
            raise PartnerProtocolError(
                self.partner, "GET /programs", "unexpected_shape", "expected programs: [...]"
            )
        codes = [p.get("code") for p in listed if isinstance(p, dict)]
        return [c for c in codes if isinstance(c, str) and c]

    # --- one page ------------------------------------------------------------------------------

    def poll(self, checkpoint: Any | None) -> PollResult:
        """Import the next page of the current program; ``more`` while any program has more."""
        state = dict(checkpoint) if isinstance(checkpoint, Mapping) else None
        if state is None or int(state.get("index", 0)) >= len(state.get("programs") or []):
            state = self._start(state)
        programs: list[str] = list(state["programs"])
        if not programs:
            return PollResult([], state, more=False)
        index = int(state["index"])
        code = programs[index]
        offsets: dict[str, int] = dict(state["offsets"])
        offset = int(offsets.get(code, 0))
        size = int(self.settings["page_size"])
        page = self._page(code, offset // size + 1, size)
        total = page["totalItems"]
        if offset > total:  # the list shrank: the MIS was reset; read it again from the start
            self.log.warning("%s: program %s list shrank; re-reading it", self.instance_name, code)
            offsets[code] = 0
            return PollResult([], {**state, "offsets": offsets}, more=True)
        fresh = page["items"][offset % size :]
        records = [self._record(code, item, offset + n) for n, item in enumerate(fresh, 1)]
        offsets[code] = offset + len(fresh)
        has_next = bool(page.get("hasNext")) and bool(fresh)
        next_state = {**state, "offsets": offsets}
        if not has_next:
            next_state["index"] = index + 1
        more = has_next or index + 1 < len(programs)
        return PollResult(records, next_state, more=more)

    def _page(self, code: str, number: int, size: int) -> dict[str, Any]:
        operation = "GET /programs/{code}/beneficiaries"
        body = self.client.json_of(
            self.client.get(
                f"programs/{quote(code, safe='')}/beneficiaries",
                params={"page": number, "page_size": size},
                operation=operation,
            ),
            operation,
        )
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("items"), list)
            or not isinstance(body.get("totalItems"), int)
        ):
            raise PartnerProtocolError(
                self.partner, operation, "unexpected_shape", "expected items and totalItems"
            )
        return body

    @staticmethod
    def _record(code: str, item: Any, position: int) -> RawRecord:
        """One beneficiary raw; an item that is not an object is still passed on (wrapped), so
        the ingest's dead-letter queue shows it instead of it vanishing here."""
        if not isinstance(item, dict):
            return RawRecord(
                RECORD_TYPE,
                {"unreadable_item": item if isinstance(item, str | int | float) else None},
                source_id=f"{code}:position:{position}",
                headers={"program_code": code, "problem": "item is not an object"},
            )
        number = item.get("beneficiaryNo")
        if isinstance(number, str) and number:
            source = f"{code}:{number}"
        else:
            source = f"{code}:position:{position}"
        return RawRecord(RECORD_TYPE, item, source_id=source, headers={"program_code": code})
