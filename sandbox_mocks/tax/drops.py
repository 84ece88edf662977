"""The drop folder: writes income extracts with their manifests, on demand or on a timer.

Files are written atomically (temporary dot-file in the same folder, fsync, rename) and the
manifest is written last, so a watcher that waits for ``*.manifest.json`` never sees half a
delivery. The one exception is the deliberate ``truncated`` fault, which writes a short data
file straight under its final name while the manifest describes the complete one.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox_mocks.tax import formats
from sandbox_mocks.tax.injection import (
    BAD_ROW_KINDS,
    FILE_FAULTS,
    FaultPlan,
    InjectionMix,
    corrupt_rows,
    plan_from_mix,
    validate,
)
from sandbox_mocks.tax.records import Row

log = logging.getLogger(__name__)

FILE_PREFIX = "income"
_SEQUENCE_RE = re.compile(rf"^{FILE_PREFIX}_[^_]+_(\d+)\.(csv|xml)$")

DROP_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "format": {"enum": list(formats.FORMATS)},
        "period": {"type": "string", "pattern": "^[0-9]{4}$"},
        "rows": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "faults": {"type": "array", "items": {"enum": list(FILE_FAULTS)}, "uniqueItems": True},
        "bad_rows": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                kind: {"type": "integer", "minimum": 0, "maximum": 100_000}
                for kind in BAD_ROW_KINDS
            },
        },
    },
}


@dataclass(frozen=True)
class DropRequest:
    """One drop's options. ``faults``/``bad_rows`` given: exactly those; else the mix decides."""

    fmt: str | None = None
    period: str | None = None
    rows: int | None = None
    faults: tuple[str, ...] | None = None
    bad_rows: Mapping[str, int] | None = None

    @classmethod
    def from_json(cls, data: Any) -> DropRequest:
        validate(data, DROP_REQUEST_SCHEMA)
        faults = data.get("faults")
        return cls(
            fmt=data.get("format"),
            period=data.get("period"),
            rows=data.get("rows"),
            faults=tuple(faults) if faults is not None else None,
            bad_rows=data.get("bad_rows"),
        )

    @property
    def explicit(self) -> bool:
        return self.faults is not None or self.bad_rows is not None


@dataclass
class DropFolderState:
    sequence: int = 0
    drop_count: int = 0
    cursors: dict[str, int] = field(default_factory=dict)  # period -> next row offset
    history: list[dict[str, Any]] = field(default_factory=list)


class UnknownPeriodError(LookupError):
    """A drop was asked for a tax year the mock holds no income for."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TaxDropFolder:
    """Owns the drop folder: numbering, fault planning, writing, history and the timer."""

    HISTORY_LIMIT = 1000

    def __init__(
        self,
        folder: Path,
        rows_by_period: Mapping[str, list[Row]],
        *,
        seed: int = 0,
        formats_cycle: tuple[str, ...] = ("csv", "xml"),
        rows_per_file: int = 0,
        interval_seconds: float = 0.0,
        mix: InjectionMix | None = None,
        issuer: str = "Sandbox Tax Authority",
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        for fmt in formats_cycle:
            if fmt not in formats.FORMATS:
                raise ValueError(f"unknown format {fmt!r}; expected csv or xml")
        if not formats_cycle:
            raise ValueError("formats_cycle must name at least one format")
        self.folder = Path(folder).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._rows = {period: list(rows) for period, rows in rows_by_period.items()}
        self._periods = sorted(self._rows)
        self.seed = seed
        self.formats_cycle = tuple(formats_cycle)
        self.rows_per_file = rows_per_file
        self.interval_seconds = interval_seconds
        self.issuer = issuer
        self._mix = mix or InjectionMix()
        self._clock = clock
        self._lock = threading.Lock()
        self._state = DropFolderState(sequence=self._highest_sequence_on_disk())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.next_drop_at: datetime | None = None

    # ----------------------------------------------------------------- queries
    @property
    def periods(self) -> list[str]:
        return list(self._periods)

    @property
    def mix(self) -> InjectionMix:
        return self._mix

    def set_mix(self, mix: InjectionMix) -> None:
        self._mix = mix

    def drops(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.history)

    def drop(self, drop_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((d for d in self._state.history if d["drop_id"] == drop_id), None)

    def status(self) -> dict[str, Any]:
        with self._lock:
            count = self._state.drop_count
        return {
            "drop_folder": str(self.folder),
            "interval_seconds": self.interval_seconds,
            "next_drop_at": formats.utc_timestamp(self.next_drop_at) if self.next_drop_at else None,
            "periods": {p: len(self._rows[p]) for p in self._periods},
            "formats": list(self.formats_cycle),
            "rows_per_file": self.rows_per_file,
            "drop_count": count,
            "injection": self._mix.to_json(),
        }

    # ----------------------------------------------------------------- writing
    def drop_now(self, request: DropRequest | None = None) -> dict[str, Any]:
        """Write one delivery (one data file, or two for ``duplicate``) and return its record."""
        request = request or DropRequest()
        if not self._periods:
            raise UnknownPeriodError("the population has no income records to drop")
        if request.period is not None and request.period not in self._rows:
            known = ", ".join(self._periods)
            raise UnknownPeriodError(f"no income for period {request.period}; known: {known}")
        with self._lock:
            return self._drop_locked(request)

    def _drop_locked(self, request: DropRequest) -> dict[str, Any]:
        state = self._state
        count = state.drop_count
        # Periods turn fastest, then formats: every (period, format) pair comes round.
        periods = len(self._periods)
        period = request.period or self._periods[count % periods]
        fmt = request.fmt or self.formats_cycle[(count // periods) % len(self.formats_cycle)]
        rows = self._take_rows(period, request.rows)
        rng = random.Random(f"{self.seed}:{state.sequence + 1}")
        plan = self._plan(request, len(rows), rng)
        rows, bad = corrupt_rows(rows, plan.bad_rows, rng)

        state.sequence += 1
        sequence = state.sequence
        generated_at = formats.utc_timestamp(self._clock())
        text = formats.render(fmt, rows, period, sequence, generated_at)
        full = formats.encode(text, wrong_encoding="wrong_encoding" in plan.file_faults)
        files = [
            self._write_delivery(
                fmt,
                period,
                sequence,
                full,
                len(rows),
                generated_at,
                truncated="truncated" in plan.file_faults,
                rng=rng,
            )
        ]
        if "duplicate" in plan.file_faults:
            state.sequence += 1
            files.append(
                self._write_delivery(
                    fmt,
                    period,
                    state.sequence,
                    full,
                    len(rows),
                    generated_at,
                    truncated="truncated" in plan.file_faults,
                    rng=rng,
                )
            )
        state.drop_count += 1
        record = {
            "drop_id": f"D{sequence:06d}",
            "sequence": sequence,
            "period": period,
            "format": fmt,
            "row_count": len(rows),
            "created_at": generated_at,
            "files": files,
            "faults": {"file": list(plan.file_faults), "bad_rows": bad},
        }
        state.history.append(record)
        del state.history[: -self.HISTORY_LIMIT]
        log.info(
            "tax drop %s: %s rows, format %s, file faults %s, %d bad rows",
            record["drop_id"],
            len(rows),
            fmt,
            plan.file_faults or "none",
            len(bad),
        )
        return record

    def _take_rows(self, period: str, limit: int | None) -> list[Row]:
        """The next chunk of the period (wrapping), numbered from 1 inside the file."""
        source = self._rows[period]
        size = limit or self.rows_per_file or len(source)
        size = min(size, len(source))
        start = self._state.cursors.get(period, 0) % max(len(source), 1)
        self._state.cursors[period] = start + size
        numbered = []
        for number in range(1, size + 1):
            copy = dict(source[(start + number - 1) % len(source)])
            copy["RECORD_NO"] = str(number)
            numbered.append(copy)
        return numbered

    def _plan(self, request: DropRequest, row_count: int, rng: random.Random) -> FaultPlan:
        if request.explicit:
            return FaultPlan(
                bad_rows={k: v for k, v in (request.bad_rows or {}).items() if v},
                file_faults=list(request.faults or ()),
            )
        return plan_from_mix(self._mix, row_count, rng)

    def _write_delivery(
        self,
        fmt: str,
        period: str,
        sequence: int,
        data: bytes,
        row_count: int,
        generated_at: str,
        *,
        truncated: bool,
        rng: random.Random,
    ) -> dict[str, Any]:
        name = f"{FILE_PREFIX}_{period}_{sequence:06d}.{formats.FORMATS[fmt]}"
        digest = formats.sha256_hex(data)
        data_path = self.folder / name
        if truncated:
            # Deliberately not atomic: the writer "died" part-way through, mid-record.
            cut = max(1, int(len(data) * rng.uniform(0.3, 0.7)))
            data_path.write_bytes(data[:cut])
            written = cut
        else:
            _atomic_write(data_path, data)
            written = len(data)
        _atomic_write(
            self.folder / f"{name}.sha256", formats.checksum_line(digest, name).encode("ascii")
        )
        manifest = formats.build_manifest(
            file_name=name,
            fmt=fmt,
            period=period,
            row_count=row_count,
            digest=digest,
            size_bytes=len(data),
            generated_at=generated_at,
            sequence=sequence,
            issuer=self.issuer,
        )
        manifest_name = f"{FILE_PREFIX}_{period}_{sequence:06d}.manifest.json"
        _atomic_write(self.folder / manifest_name, formats.manifest_bytes(manifest))
        return {
            "file_name": name,
            "manifest_name": manifest_name,
            "checksum_name": f"{name}.sha256",
            "sha256": digest,
            "row_count": row_count,
            "size_bytes": len(data),
            "bytes_written": written,
        }

    def _highest_sequence_on_disk(self) -> int:
        """Continue numbering after files left by an earlier run, never overwrite them."""
        highest = 0
        for entry in self.folder.iterdir():
            match = _SEQUENCE_RE.match(entry.name)
            if match:
                highest = max(highest, int(match.group(1)))
        return highest

    # ------------------------------------------------------------------- timer
    def start(self) -> None:
        """Start periodic drops (no-op when ``interval_seconds`` is 0)."""
        if self.interval_seconds <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tax-drops", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.next_drop_at = None

    def _run(self) -> None:
        while True:
            self.next_drop_at = self._clock() + timedelta(seconds=self.interval_seconds)
            if self._stop.wait(self.interval_seconds):
                return
            try:
                self.drop_now()
            except Exception:  # a failed drop must not stop the timer
                log.exception("periodic tax drop failed")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write under a dot-name in the same folder, fsync, then rename over the final name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
