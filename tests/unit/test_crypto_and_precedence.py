"""Identifier protection and source precedence, without a database."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from registry_core.crypto import (
    IdentifierCipher,
    IdentifierDecryptionError,
    mask_identifier,
    normalise_identifier,
)
from registry_core.precedence import Candidate, SourcePrecedence


@pytest.fixture
def cipher() -> IdentifierCipher:
    return IdentifierCipher(os.urandom(32), os.urandom(32))


def test_ciphertext_round_trips_and_hides_the_value(cipher):
    blob = cipher.encrypt("national_id", "123 456-789 7")
    assert b"1234567897" not in blob
    assert cipher.decrypt("national_id", blob) == "1234567897"
    assert cipher.encrypt("national_id", "1234567897") != blob  # fresh nonce each time


def test_ciphertext_is_bound_to_its_system_and_tamper_evident(cipher):
    blob = cipher.encrypt("national_id", "1234567897")
    with pytest.raises(IdentifierDecryptionError):
        cipher.decrypt("tax_id", blob)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(IdentifierDecryptionError):
        cipher.decrypt("national_id", tampered)
    other = IdentifierCipher(os.urandom(32), os.urandom(32))
    with pytest.raises(IdentifierDecryptionError):
        other.decrypt("national_id", blob)


def test_lookup_hash_is_keyed_normalised_and_per_system(cipher):
    assert cipher.lookup_hash("national_id", "12-34 5") == cipher.lookup_hash(
        "national_id", "12345"
    )
    assert cipher.lookup_hash("national_id", "12345") != cipher.lookup_hash("tax_id", "12345")
    other = IdentifierCipher(os.urandom(32), os.urandom(32))
    assert other.lookup_hash("national_id", "12345") != cipher.lookup_hash("national_id", "12345")


def test_keys_must_be_32_bytes():
    with pytest.raises(ValueError):
        IdentifierCipher(b"short", os.urandom(32))


def test_normalise_and_mask():
    assert normalise_identifier(" ab.12/3-4 ") == "AB1234"
    assert mask_identifier("1234567897") == "********97"
    assert mask_identifier("7") == "*"


def test_precedence_prefers_rank_then_recency():
    table = SourcePrecedence.default()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    crvs = Candidate("2012-09-10", "civil_registry", t0)
    nid_later = Candidate("2012-09-11", "national_id", t0 + timedelta(days=9))
    self_latest = Candidate("2013-01-01", "self_declared", t0 + timedelta(days=99))
    assert table.choose("person", "birth_date", [self_latest, nid_later, crvs]) is crvs
    assert table.choose("person", "birth_date", [self_latest, nid_later]) is nid_later
    newer_crvs = Candidate("2012-09-12", "civil_registry", t0 + timedelta(days=1))
    assert table.choose("person", "birth_date", [crvs, newer_crvs]) is newer_crvs
    # An unlisted source ranks below every listed one.
    unknown = Candidate("2014-01-01", "brand_new_partner", t0 + timedelta(days=500))
    assert table.choose("person", "birth_date", [unknown, self_latest]) is self_latest
    assert table.choose("person", "birth_date", []) is None


def test_precedence_file_overrides_defaults(tmp_path):
    path = tmp_path / "precedence.toml"
    path.write_text('[precedence]\n"person.birth_date" = ["self_declared", "civil_registry"]\n')
    table = SourcePrecedence.from_file(path)
    assert table.ranking("person", "birth_date") == ["self_declared", "civil_registry"]
    assert table.ranking("person", "death_date")[0] == "civil_registry"  # default kept
    with pytest.raises(ValueError):
        SourcePrecedence({"birth_date": ["x"]})
