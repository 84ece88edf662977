"""The tax authority's file formats: a semicolon CSV, an XML extract, and the JSON manifest.

Pure functions from rows to text/bytes. The files deliberately look like a partner's export
(upper-case CSV headers, a namespaced XML of its own), and the manifest tells the receiver what
it should have got, so truncation, duplication and encoding faults can be detected.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from sandbox_mocks.tax.records import CSV_COLUMNS, Row

XML_NAMESPACE = "urn:sandbox:tax-authority:income-extract:1"
XSD_PATH = Path(__file__).with_name("income-extract.xsd")  # the published schema of the XML
MANIFEST_VERSION = "1.0"
CSV_DELIMITER = ";"
FORMATS: dict[str, str] = {"csv": "csv", "xml": "xml"}  # format -> file extension

# XML element per CSV column; TAXPAYER_TIN is left out of the record when it is empty.
_XML_FIELDS: tuple[tuple[str, str], ...] = (
    ("TAXPAYER_TIN", "TaxpayerTIN"),
    ("NATIONAL_ID", "NationalID"),
    ("TAXPAYER_NAME", "TaxpayerName"),
    ("TAX_YEAR", "TaxYear"),
    ("PERIOD_START", "PeriodStart"),
    ("PERIOD_END", "PeriodEnd"),
    ("FILED_ON", "FiledOn"),
    ("TAX_OFFICE", "TaxOffice"),
)


def render_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(CSV_COLUMNS), delimiter=CSV_DELIMITER, lineterminator="\r\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def render_xml(rows: list[Row], period: str, sequence: int, generated_at: str) -> str:
    """The XML variant. Returned as text with a UTF-8 declaration; encoding happens later."""
    ns = f"{{{XML_NAMESPACE}}}"
    root = etree.Element(
        f"{ns}IncomeExtract",
        nsmap={None: XML_NAMESPACE},
        period=period,
        sequence=str(sequence),
        generated=generated_at,
        records=str(len(rows)),
    )
    for row in rows:
        record = etree.SubElement(root, f"{ns}Return", recordNo=row["RECORD_NO"])
        for column, tag in _XML_FIELDS:
            if column == "TAXPAYER_TIN" and not row[column]:
                continue  # the "missing tax id" fault drops the element, as real exports do
            etree.SubElement(record, f"{ns}{tag}").text = row[column]
            if column == "TAXPAYER_NAME":
                employer = etree.SubElement(record, f"{ns}Employer", tin=row["EMPLOYER_TIN"])
                employer.text = row["EMPLOYER_NAME"]
        income = etree.SubElement(record, f"{ns}GrossIncome", currency=row["CURRENCY"])
        income.text = row["GROSS_INCOME"]
    body = etree.tostring(root, encoding="unicode", pretty_print=True)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def render(fmt: str, rows: list[Row], period: str, sequence: int, generated_at: str) -> str:
    if fmt == "csv":
        return render_csv(rows)
    if fmt == "xml":
        return render_xml(rows, period, sequence, generated_at)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def encode(text: str, wrong_encoding: bool) -> bytes:
    """UTF-8 normally; latin-1 for the wrong-encoding fault (the manifest still says UTF-8)."""
    if wrong_encoding:
        return text.encode("latin-1", errors="replace")
    return text.encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksum_line(digest: str, file_name: str) -> str:
    """The ``sha256sum`` format, so ``sha256sum -c`` works on the drop folder."""
    return f"{digest}  {file_name}\n"


def utc_timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_manifest(
    *,
    file_name: str,
    fmt: str,
    period: str,
    row_count: int,
    digest: str,
    size_bytes: int,
    generated_at: str,
    sequence: int,
    issuer: str,
) -> dict[str, Any]:
    """What the receiver should find in the data file. Faults never show up here."""
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "issuer": issuer,
        "file_name": file_name,
        "format": fmt,
        "encoding": "utf-8",
        "period": period,
        "row_count": row_count,
        "sha256": digest,
        "size_bytes": size_bytes,
        "generated_at": generated_at,
        "sequence": sequence,
    }
    if fmt == "csv":
        manifest["delimiter"] = CSV_DELIMITER
        manifest["header"] = True
    else:
        manifest["namespace"] = XML_NAMESPACE
    return manifest


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
