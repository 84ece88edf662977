"""Reading an export one row at a time: the file is streamed, never held.

Each row comes with the line it starts on, so a reject names the line an operator opens.
A line that is not a row (JSON that is not an object, a CSV row with the wrong number of
fields) comes with the reason instead of values.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("csv", "jsonl")
BLOCK = 1 << 20


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line the row starts on
    values: dict[str, Any]
    problem: str = ""


def count_lines(path: Path) -> int:
    """Lines in the file (a fast byte scan: the progress bar's total)."""
    lines = 0
    last = b""
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (1 if last not in (b"", b"\n") else 0)


def iter_rows(path: Path, fmt: str, delimiter: str = ",") -> Iterator[Row]:
    """The data rows of ``path`` in ``fmt`` (``csv`` with a header line, or ``jsonl``)."""
    if fmt == "csv":
        yield from _csv_rows(path, delimiter)
    elif fmt == "jsonl":
        yield from _jsonl_rows(path)
    else:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


def _csv_rows(path: Path, delimiter: str) -> Iterator[Row]:
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            return
        line = reader.line_num
        for values in reader:
            start, line = line + 1, reader.line_num
            if not values:
                continue
            if len(values) != len(header):
                yield Row(start, {}, f"row has {len(values)} fields, the header has {len(header)}")
                continue
            yield Row(start, dict(zip(header, values, strict=True)))


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with path.open("r", encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Row(number, {}, f"not JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(value, dict):
                yield Row(number, {}, "a line must hold one JSON object")
                continue
            yield Row(number, value)
