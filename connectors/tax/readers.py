"""Streaming readers of the tax extract: whole-file checks first, then one row at a time.

Why two passes: a file is either taken or refused *whole* when its encoding, structure or row
count is wrong, and a refused file must leave nothing behind in the registry. Streaming means
rows are published while reading, so the file-level checks run first, in their own streaming
pass (``check_utf8`` and ``count_*``), and only a file that passes is read again to publish.
Every pass holds one row (CSV) or one ``<Return>`` element (XML) at a time: memory stays flat
whatever the file size.

XML is read with ``lxml.etree.iterparse`` under the project's safe settings (no entity
resolution, no network, no DTD loading, no huge trees), and a document type declaration of any
kind refuses the file: an income extract has no use for one, and entities are how XML bombs and
external-reference attacks arrive. Each ``<Return>`` is turned into a dict with
``mappings.xml_records.element_to_dict`` (the shape the ``tax_income_row`` spec reads) and then
cleared, together with the siblings before it.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from connectors.base import FileRejected
from connectors.tax.validation import HEADER_REQUIRED, Problem
from mappings.xml_records import element_to_dict

DEFAULT_NAMESPACE = "urn:sandbox:tax-authority:income-extract:1"
ROOT_NAME = "IncomeExtract"
RECORD_NAME = "Return"
BLOCK = 1024 * 1024
PROLOG_BYTES = 64 * 1024
MAX_FIELD_CHARS = 64 * 1024

# XML element (local name) -> CSV column, so one set of row checks serves both formats.
XML_TO_COLUMN: dict[str, str] = {
    "TaxpayerTIN": "TAXPAYER_TIN",
    "NationalID": "NATIONAL_ID",
    "TaxpayerName": "TAXPAYER_NAME",
    "Employer": "EMPLOYER_NAME",
    "TaxYear": "TAX_YEAR",
    "PeriodStart": "PERIOD_START",
    "PeriodEnd": "PERIOD_END",
    "FiledOn": "FILED_ON",
    "TaxOffice": "TAX_OFFICE",
    "GrossIncome": "GROSS_INCOME",
}
_ENCODING_DECL = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_UTF8_NAMES = ("utf-8", "utf8")


@dataclass
class SourceRow:
    """One record as read: ``payload`` is published unchanged, ``flat`` is what is checked."""

    number: int  # 1-based position among the file's records
    line: int | None  # CSV: the line the record starts on
    payload: dict[str, Any]
    flat: dict[str, str]
    problems: list[Problem] = field(default_factory=list)  # found while reading


# --- encoding ------------------------------------------------------------------------------


def check_utf8(path: Path, declared: str = "utf-8") -> None:
    """Refuse the file when any byte sequence is not UTF-8; the reason names line and byte."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    newlines = 0
    offset = 0
    with path.open("rb") as handle:
        while True:
            block = handle.read(BLOCK)
            final = not block
            try:
                decoder.decode(block, final=final)
            except UnicodeDecodeError as error:
                pending = len(error.object) - len(block)
                before = bytes(error.object[: error.start])
                line = 1 + newlines + before.count(b"\n")
                position = offset - pending + error.start + 1
                raise FileRejected(
                    f"not valid UTF-8 at line {line} (byte {position}), although the manifest "
                    f"declares the encoding {declared}: re-export the file in UTF-8"
                ) from None
            if final:
                return
            newlines += block.count(b"\n")
            offset += len(block)


# --- CSV -----------------------------------------------------------------------------------


def _csv_reader(handle: Any, delimiter: str) -> Any:
    return csv.reader(handle, delimiter=delimiter, strict=True)


def _header(reader: Any) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise FileRejected("the CSV file is empty: no header line") from None
    names = [name.strip() for name in header]
    missing = [name for name in HEADER_REQUIRED if name not in names]
    if missing:
        delimiter = reader.dialect.delimiter
        raise FileRejected(
            f"the CSV header lacks column(s) {', '.join(missing)} (delimiter '{delimiter}')"
        )
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise FileRejected(f"the CSV header repeats column(s) {', '.join(duplicated)}")
    return names


def count_csv(path: Path, delimiter: str) -> int:
    """Records in the file (blank lines not counted); refuses a file the csv module cannot
    read (an unclosed quote, a field beyond the size limit) or one without the header."""
    with _field_limit(), path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = _csv_reader(handle, delimiter)
        _header(reader)
        count = 0
        try:
            for values in reader:
                if values:
                    count += 1
        except csv.Error as error:
            raise FileRejected(
                f"the CSV cannot be read at line {reader.line_num}: {_csv_error(error)}"
            ) from None
        return count


def iter_csv(path: Path, delimiter: str) -> Iterator[SourceRow]:
    """The data rows, each as ``{column: text}``; a row with the wrong number of fields carries
    a problem instead of being guessed at."""
    with _field_limit(), path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = _csv_reader(handle, delimiter)
        names = _header(reader)
        number = 0
        line = reader.line_num
        for values in reader:
            start, line = line + 1, reader.line_num
            if not values:
                continue
            number += 1
            row = SourceRow(number, start, {}, {})
            if len(values) != len(names):
                row.problems.append(
                    Problem("*", f"row has {len(values)} fields, the header has {len(names)}")
                )
            row.payload = dict(zip(names, values, strict=False))
            row.flat = row.payload  # csv gives text only: the same dict serves both
            yield row


class _field_limit:
    """csv's per-field limit, lowered for the duration of a read: a runaway quoted field is
    an error, not a megabyte string (the limit is process-wide, so it is restored after)."""

    def __enter__(self) -> None:
        self._previous = csv.field_size_limit(MAX_FIELD_CHARS)

    def __exit__(self, *_exc: object) -> None:
        csv.field_size_limit(self._previous)


def _csv_error(error: csv.Error) -> str:
    text = str(error)
    return "a field is larger than allowed" if "field larger" in text else "malformed quoting"


# --- XML -----------------------------------------------------------------------------------


def check_xml_prolog(path: Path) -> None:
    """Cheap refusals before parsing: a DTD or entity declaration, or a declared encoding
    other than UTF-8 (the parser would otherwise follow the file, not the manifest)."""
    with path.open("rb") as handle:
        head = handle.read(PROLOG_BYTES)
    upper = head.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise FileRejected(
            "the XML declares a DOCTYPE or entities; documents with a DTD, entities or external "
            "references are refused"
        )
    match = _ENCODING_DECL.match(head.lstrip(b"\xef\xbb\xbf"))
    if match and match.group(1).decode("ascii").lower() not in _UTF8_NAMES:
        raise FileRejected("the XML declares an encoding other than UTF-8, unlike its manifest")


def _iterparse(path: Path, namespace: str) -> Any:
    # libxml2 keeps parse errors in a log per thread that outlives each parse: left alone,
    # one file's entity complaint was read back as the reason for every later malformed file
    # of that thread. Each parse starts with an empty log, so its errors are its own.
    etree.clear_error_log()
    return etree.iterparse(
        str(path),
        events=("end",),
        tag=f"{{{namespace}}}{RECORD_NAME}",
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _check_root(root: Any, namespace: str) -> dict[str, str]:
    """The root's attributes, after refusing a DTD or a root that is not the extract."""
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise FileRejected(
            "the XML declares a DOCTYPE; documents with a DTD, entities or external references "
            "are refused"
        )
    if root.tag != f"{{{namespace}}}{ROOT_NAME}":
        raise FileRejected(
            f"the XML root is not {ROOT_NAME} in namespace {namespace}; not an income extract"
        )
    return {str(k): str(v) for k, v in root.attrib.items()}


def _under_root(element: Any) -> bool:
    parent = element.getparent()
    return parent is not None and parent.getparent() is None


def _release(element: Any) -> None:
    """Drop a handled record and everything before it, so the tree never grows."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def _syntax(error: etree.XMLSyntaxError) -> FileRejected:
    """A refusal naming the parser's first complaint and its line (libxml2 keeps the root
    cause in the error log; the exception itself may only say where parsing stopped)."""
    entries = list(error.error_log) if error.error_log else []
    # The log holds this parse's complaints only (``_iterparse`` clears it first): an entity
    # problem anywhere in it, or in the exception itself, is what decides the reason.
    entity = next(
        (e for e in entries if "ENTITY" in e.type_name or "ntity" in (e.message or "")), None
    )
    first = entity or (entries[-1] if entries else None)
    line = (first.line if first is not None else error.lineno) or "?"
    message = (first.message if first is not None else error.msg) or "syntax error"
    kind = first.type_name if first is not None else ""
    if "ENTITY" in kind or "ntity" in message or "ntity" in (error.msg or ""):
        return FileRejected(
            f"the XML uses an entity reference at line {line}; entities are refused"
        )
    message = message.split(",")[0].strip()[:120]
    return FileRejected(
        f"the XML is not well-formed at line {line} ({message}); the file may be truncated"
    )


@dataclass
class XmlSummary:
    records: int
    root_attributes: dict[str, str]


def count_xml(path: Path, namespace: str) -> XmlSummary:
    """Parse the whole document without keeping it: refuses DTDs, entities, a wrong root and
    anything not well-formed; counts the ``<Return>`` records directly under the root."""
    check_xml_prolog(path)
    context = _iterparse(path, namespace)
    count = 0
    attributes: dict[str, str] | None = None
    try:
        for _event, element in context:
            root = element.getroottree().getroot()
            if attributes is None:
                attributes = _check_root(root, namespace)
            if _under_root(element):
                count += 1
            _release(element)
    except etree.XMLSyntaxError as error:
        raise _syntax(error) from None
    root = getattr(context, "root", None)
    if root is None:
        raise FileRejected("the XML file holds no document")
    if attributes is None:
        attributes = _check_root(root, namespace)
    return XmlSummary(count, attributes)


def _text(value: Any) -> str | None:
    """Text of a converted leaf: a string, or ``#text`` beside attributes; None if nested."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and not any(not k.startswith(("@", "#")) for k in value):
        text = value.get("#text", "")
        return text if isinstance(text, str) else None
    return None


def _flat(payload: dict[str, Any]) -> tuple[dict[str, str], list[Problem]]:
    """The record's values under CSV column names, read from its converted form, and the
    structural problems the XSD would refuse (unknown, repeated or nested elements)."""
    record_no = payload.get("@recordNo", "")
    flat: dict[str, str] = {"RECORD_NO": record_no if isinstance(record_no, str) else ""}
    problems: list[Problem] = []
    for name, value in payload.items():
        if name.startswith(("@", "#")):
            continue
        column = XML_TO_COLUMN.get(name)
        if column is None:
            problems.append(Problem(name, "unexpected element in a Return"))
            continue
        if isinstance(value, list):
            problems.append(Problem(column, f"element {name} appears more than once"))
            continue
        text = _text(value)
        if text is None:
            problems.append(Problem(column, f"element {name} must hold text only"))
            continue
        flat[column] = text
        if isinstance(value, dict) and name == "Employer":
            flat["EMPLOYER_TIN"] = str(value.get("@tin", ""))
        elif isinstance(value, dict) and name == "GrossIncome":
            flat["CURRENCY"] = str(value.get("@currency", ""))
    return flat, problems


def iter_xml(path: Path, namespace: str) -> Iterator[SourceRow]:
    """The ``<Return>`` records directly under the root, in document order."""
    context = _iterparse(path, namespace)
    number = 0
    try:
        for _event, element in context:
            if not _under_root(element):
                _release(element)
                continue
            number += 1
            payload = element_to_dict(element)
            if not isinstance(payload, dict):
                payload = {"#text": payload}
            _release(element)
            flat, problems = _flat(payload)
            yield SourceRow(number, None, payload, flat, problems)
    except etree.XMLSyntaxError as error:  # the counting pass passed: the file changed since
        raise _syntax(error) from None
