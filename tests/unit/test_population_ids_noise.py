"""National ID check digits and partner data-entry noise."""

from __future__ import annotations

import random
from dataclasses import fields

import pytest

from sandbox_mocks.population import (
    apply_noise,
    is_valid_national_id,
    iter_households,
    national_id_check_digit,
    partner_view,
    verhoeff_check_digit,
    verhoeff_is_valid,
)


def test_verhoeff_known_values() -> None:
    # Published examples of the Verhoeff scheme.
    assert verhoeff_check_digit("236") == "3"
    assert verhoeff_is_valid("2363")
    assert verhoeff_check_digit("12345") == "1"
    assert verhoeff_check_digit("142857") == "0"
    assert not verhoeff_is_valid("2364")


def test_check_digit_catches_every_single_error_and_adjacent_swap() -> None:
    rng = random.Random(1)
    for _ in range(200):
        body = str(rng.randrange(10**8, 10**9))
        nid = body + national_id_check_digit(body)
        assert is_valid_national_id(nid)
        for i in range(10):
            for d in "0123456789":
                if d != nid[i]:
                    assert not verhoeff_is_valid(nid[:i] + d + nid[i + 1 :])
        for i in range(9):
            if nid[i] != nid[i + 1]:
                swapped = nid[:i] + nid[i + 1] + nid[i] + nid[i + 2 :]
                assert not verhoeff_is_valid(swapped)


FULLWIDTH_DIGITS = "".join(chr(0xFF10 + d) for d in range(10))  # isdigit() but not ASCII


@pytest.mark.parametrize("bad", [None, "", "123", "12345678901", FULLWIDTH_DIGITS, "abcdefghij"])
def test_invalid_national_id_shapes(bad: str | None) -> None:
    assert not is_valid_national_id(bad)


def test_check_digit_rejects_non_digits() -> None:
    with pytest.raises(ValueError):
        national_id_check_digit("12345678x")
    with pytest.raises(ValueError):
        national_id_check_digit("123")


def _people():
    return [p for h in iter_households(21, 3000) for p in h.members]


def test_noise_rate_zero_and_one() -> None:
    people = _people()
    rng = random.Random(2)
    assert all(apply_noise(p, rng, 0.0) is p for p in people)
    changed = [apply_noise(p, rng, 1.0) for p in people]
    assert sum(c != p for c, p in zip(changed, people, strict=True)) / len(people) > 0.85
    with pytest.raises(ValueError):
        apply_noise(people[0], rng, 1.5)


def test_noise_kinds_and_share() -> None:
    people = _people()
    views = [partner_view(p, "tax", 21, 0.2) for p in people]
    changed = [(v, p) for v, p in zip(views, people, strict=True) if v != p]
    assert 0.12 < len(changed) / len(people) < 0.28
    differing = {
        f.name for v, p in changed for f in fields(p) if getattr(v, f.name) != getattr(p, f.name)
    }
    assert {"given_name", "family_name", "birth_date"} <= differing
    swapped = [
        v for v, p in changed if (v.given_name, v.family_name) == (p.family_name, p.given_name)
    ]
    assert swapped
    assert all(v.person_key == p.person_key for v, p in changed)


def test_partner_view_is_stable_and_respects_keep() -> None:
    people = _people()
    first = [partner_view(p, "civil", 21, 0.5) for p in people]
    assert first == [partner_view(p, "civil", 21, 0.5) for p in people]
    assert first != [partner_view(p, "tax", 21, 0.5) for p in people]
    kept = [partner_view(p, "nid", 21, 1.0, keep=frozenset({"national_id"})) for p in people]
    assert all(k.national_id == p.national_id for k, p in zip(kept, people, strict=True))
