"""The tax authority connector: income extracts dropped as CSV or XML files with a manifest.

What happens to a dropped file, in order (``FileDropRunner`` drives it):

1. The drop folder waits for the manifest and a matching SHA-256. A file whose content does not
   match its manifest is refused *whole* as truncated or corrupted, with a reason file; no row
   of it is read. Precision first: a short file's first rows look fine but cannot be trusted to
   be what the authority sent, and re-sending the file is cheap.
2. Content already processed (same SHA-256, remembered in the database) is set aside as a
   duplicate.
3. ``handle_file`` checks the manifest (format, encoding, row count present), then streams the
   whole file once without publishing: not UTF-8, not parseable CSV, XML not well-formed or
   carrying a DTD/entities, or a record count other than the manifest's refuses the file whole.
4. Only then is the file read again and every row checked (``validation.check_row``): good
   rows are published raw in batches as ``tax.income_row``; bad rows are listed in the report
   (row, column, reason; never the values) and not published.
5. A file of ``bulk_threshold`` rows or more (manifest row count; default 20,000), where the
   hub gives a bulk loader, is not published: its good rows go to the registry's bulk loader
   (``connectors/base/bulk.py``; the hub's is ``hub.bulk.connector_loader``), which maps,
   matches and writes them set-based in committed batches, as ``srhub import`` does. The
   report then carries the loader's outcomes (``bulk``).

The report is returned and written by the runner to ``processed/<file>.report.json``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from connectors.base import (
    BulkLoader,
    BulkRefusal,
    BulkRow,
    DropFolder,
    FileConnector,
    FileRejected,
    RecordType,
    connector_settings_schema,
    routing_key,
)
from connectors.base.filedrop import DROP_SCHEMA
from connectors.tax.readers import (
    DEFAULT_NAMESPACE,
    SourceRow,
    check_utf8,
    count_csv,
    count_xml,
    iter_csv,
    iter_xml,
)
from connectors.tax.report import DEFAULT_MAX_LISTED, TaxFileReport
from connectors.tax.validation import Problem, check_row

RECORD_TYPE = "income_row"
SPEC = "tax_income_row"
DEFAULT_BULK_THRESHOLD = 20_000
DEFAULT_PATTERNS = ("*.csv", "*.xml")
FORMATS = ("csv", "xml")
_URL = {"type": "string", "pattern": "^https?://"}

SETTINGS_SCHEMA: dict[str, Any] = connector_settings_schema(
    {
        "drop": DROP_SCHEMA,
        # the sandbox launcher's [connectors.tax] section: drop_folder (+ informational keys)
        "drop_folder": {"type": "string", "minLength": 1},
        "manifest_glob": {"type": "string", "minLength": 1},
        "status_url": _URL,
        "api_url": _URL,
        "url": _URL,
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 500},
        "max_reported_problems": {
            "type": "integer",
            "minimum": 0,
            "maximum": 1_000_000,
            "default": DEFAULT_MAX_LISTED,
        },
        "default_delimiter": {"type": "string", "minLength": 1, "maxLength": 1, "default": ";"},
        # Files of at least this many rows go to the registry's bulk loader, where the hub
        # gives one (connectors/base/bulk.py); 0: every file is published row by row.
        "bulk_threshold": {
            "type": "integer",
            "minimum": 0,
            "maximum": 1_000_000_000,
            "default": DEFAULT_BULK_THRESHOLD,
        },
    },
)
SETTINGS_SCHEMA["anyOf"] = [{"required": ["drop"]}, {"required": ["drop_folder"]}]


class TaxFileConnector(FileConnector):
    """Streams income extracts from the tax authority's drop folder into ``sr.inbound``."""

    name: ClassVar[str] = "tax"
    kind: ClassVar[str] = "tax"
    settings_schema: ClassVar[dict[str, Any]] = SETTINGS_SCHEMA
    # A CSV row arrives as a JSON object, an XML <Return> as its text.
    record_types: ClassVar[Mapping[str, RecordType]] = {
        RECORD_TYPE: RecordType(SPEC, "xml_or_json", "income", "taxpayer"),
    }

    def drop_folder(self) -> DropFolder:
        """The watched folder: the ``drop`` block, or the launcher's ``drop_folder``. A manifest
        is required by default: without one a file cannot be checked for completeness."""
        drop: Mapping[str, Any] = self.settings.get("drop") or {}
        folder = drop.get("folder") or self.settings["drop_folder"]
        return DropFolder(
            folder,
            self.instance_name,
            self.context.seen_files,
            patterns=tuple(drop.get("patterns", DEFAULT_PATTERNS)),
            require_manifest=bool(drop.get("require_manifest", True)),
            clock=self.context.clock,
        )

    # --- the file ----------------------------------------------------------------------------

    def handle_file(self, path: Path, manifest: Mapping[str, Any] | None) -> TaxFileReport:
        fmt, period, expected = self._check_manifest(path, manifest)
        assert manifest is not None  # _check_manifest refuses None
        check_utf8(path, str(manifest.get("encoding", "utf-8")))
        if fmt == "csv":
            delimiter = self._delimiter(manifest)
            found = count_csv(path, delimiter)
            rows: Iterator[SourceRow] = iter_csv(path, delimiter)
        else:
            namespace = str(manifest.get("namespace") or DEFAULT_NAMESPACE)
            summary = count_xml(path, namespace)
            found = summary.records
            self._check_xml_root(summary.root_attributes, period, expected)
            rows = iter_xml(path, namespace)
        if found != expected:
            raise FileRejected(
                f"the manifest announces {expected} records but the file holds {found}"
            )
        report = TaxFileReport(
            file_name=path.name,
            file_format=fmt,
            period=period,
            manifest_row_count=expected,
            routing_key=routing_key(self.instance_name, RECORD_TYPE),
            max_listed=int(self.settings["max_reported_problems"]),
        )
        loader = self.context.bulk_loader
        threshold = int(self.settings["bulk_threshold"])
        if loader is not None and threshold and expected >= threshold:
            self._load_rows(loader, path, rows, period, report)
        else:
            self._publish_rows(path, rows, period, fmt, report)
        self.log.info(
            "%s: %s: %d rows accepted, %d rejected%s",
            self.instance_name,
            path.name,
            report.accepted,
            report.rows_rejected,
            " (bulk load)" if report.bulk is not None else "",
        )
        return report

    def _load_rows(
        self,
        loader: BulkLoader,
        path: Path,
        rows: Iterator[SourceRow],
        period: str | None,
        report: TaxFileReport,
    ) -> None:
        """A large file: its good rows go to the registry's bulk loader (mapping, matching,
        set-based writes, checkpoints) instead of ``sr.inbound``. The rows are checked here
        first, by the same rules as published rows; a row the loader refuses (mapping) is
        reported like one refused here. A registry that cannot be written leaves the file
        in place (``BulkLoadUnavailable``): handled again, the load continues after its
        last committed row."""

        def good_rows() -> Iterator[BulkRow]:
            for row in self._checked(rows, period, report):
                report.accepted += 1
                yield BulkRow(row.number, row.flat)

        def refused(refusal: BulkRefusal) -> None:
            report.accepted -= 1
            problems = [
                Problem(
                    str(p.get("source_path") or p.get("column") or "(row)").removeprefix("$."),
                    str(p.get("message") or refusal.reason),
                )
                for p in refusal.problems
            ]
            report.reject(refusal.number, None, problems or [Problem("(row)", refusal.reason)])

        result = loader.load(
            path, SPEC, good_rows(), source_system=self.instance_name, on_refused=refused
        )
        report.bulk = {
            "outcomes": dict(sorted(result.counts.items())),
            "resumed_after_row": result.resumed_after,
            "loaded_before": result.already_loaded,
        }

    def _checked(
        self, rows: Iterator[SourceRow], period: str | None, report: TaxFileReport
    ) -> Iterator[SourceRow]:
        """The rows that pass the row checks; each one read is counted, each bad one is
        listed in the report with its problems."""
        for row in rows:
            report.rows_read += 1
            problems = row.problems + check_row(row.flat, period, self.context.identifiers)
            if problems:
                report.reject(row.number, row.line, problems)
                continue
            yield row

    def _publish_rows(
        self,
        path: Path,
        rows: Iterator[SourceRow],
        period: str | None,
        fmt: str,
        report: TaxFileReport,
    ) -> None:
        headers_base = {"file_name": path.name, "format": fmt}
        if period:
            headers_base["period"] = period
        with self.context.batch(int(self.settings["batch_size"])) as batch:
            for row in self._checked(rows, period, report):
                batch.add(
                    RECORD_TYPE,
                    row.payload,
                    source_id=f"{path.name}#{row.number}",
                    headers={**headers_base, "row": str(row.number)},
                )
                report.accepted += 1

    # --- manifest ----------------------------------------------------------------------------

    @staticmethod
    def _check_manifest(
        path: Path, manifest: Mapping[str, Any] | None
    ) -> tuple[str, str | None, int]:
        """(format, period, row count) from the manifest, or a refusal saying what is wrong."""
        if manifest is None:
            raise FileRejected(
                "no manifest: the tax connector needs <name>.manifest.json with sha256 and "
                "row_count to know the file is complete"
            )
        suffix = path.suffix.lower().lstrip(".")
        fmt = str(manifest.get("format") or suffix).lower()
        if fmt not in FORMATS:
            raise FileRejected(f"manifest format {fmt[:20]!r} is not one of {', '.join(FORMATS)}")
        if suffix != fmt:
            raise FileRejected(f"manifest says {fmt} but the file is named .{suffix[:10]}")
        encoding = str(manifest.get("encoding", "utf-8")).lower()
        if encoding not in ("utf-8", "utf8"):
            raise FileRejected(
                f"manifest encoding {encoding[:30]!r} is not supported; deliver UTF-8"
            )
        count = manifest.get("row_count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise FileRejected("manifest row_count missing or not a non-negative whole number")
        period = manifest.get("period")
        if period is not None and (not isinstance(period, str) or not period.isdigit()):
            raise FileRejected("manifest period is not a year")
        return fmt, period, count

    def _delimiter(self, manifest: Mapping[str, Any]) -> str:
        delimiter = manifest.get("delimiter", self.settings["default_delimiter"])
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
            raise FileRejected("manifest delimiter must be one character (not a quote or newline)")
        return delimiter

    @staticmethod
    def _check_xml_root(attributes: Mapping[str, str], period: str | None, expected: int) -> None:
        """The extract's own header must agree with its manifest."""
        if period is not None and attributes.get("period", period) != period:
            raise FileRejected("the XML period attribute differs from the manifest period")
        declared = attributes.get("records")
        if declared is not None and declared != str(expected):
            raise FileRejected("the XML records attribute differs from the manifest row_count")
