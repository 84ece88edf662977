"""Each tax XML file's refusal is its own: no parser state carried from one file to the next."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from connectors.base import FileRejected
from connectors.tax.readers import count_xml, iter_xml

NS = "urn:sandbox:tax-authority:income-extract:1"
HEAD = f'<?xml version="1.0" encoding="UTF-8"?>\n<IncomeExtract xmlns="{NS}" period="2024">'


def _reason(path: Path, read) -> str:
    with pytest.raises(FileRejected) as caught:
        read(path, NS)
    return caught.value.reason


def _write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize("read", [count_xml, lambda p, ns: list(iter_xml(p, ns))])
def test_after_an_entity_file_a_malformed_file_is_reported_as_malformed(tmp_path: Path, read):
    entity = _write(tmp_path, "a.xml", f"{HEAD}<Return>&unknown;</Return></IncomeExtract>\n")
    truncated = _write(tmp_path, "b.xml", f"{HEAD}<Return><TaxYear>2024</TaxYear></Return>\n<Ret")
    assert "entity reference" in _reason(entity, read)
    second = _reason(truncated, read)
    assert "entity" not in second
    assert "not well-formed" in second
    # And the other way round: the entity file still says entity after a malformed one.
    assert "entity reference" in _reason(entity, read)


def test_in_a_worker_thread_each_tax_xml_files_reason_is_its_own(
    tmp_path: Path,
):
    entity = _write(tmp_path, "a.xml", f"{HEAD}<Return>&unknown;</Return></IncomeExtract>\n")
    truncated = _write(tmp_path, "b.xml", f"{HEAD}<Return></Return>\n<Return>")
    reasons: list[str] = []

    def both() -> None:
        for path in (entity, truncated):
            try:
                count_xml(path, NS)
            except FileRejected as error:
                reasons.append(error.reason)

    worker = threading.Thread(target=both)
    worker.start()
    worker.join()
    assert "entity reference" in reasons[0]
    assert "not well-formed" in reasons[1] and "entity" not in reasons[1]
