"""The connector's national ID check applies the country profile it is given: with the
sandbox's (Verhoeff) it agrees with the population's generator and catches keying errors, with
the built-in one it checks the form only; the reasons never repeat the number."""

from __future__ import annotations

import random

from connectors.national_id.ids import (
    is_valid_national_id,
    national_id_problem,
    verhoeff_digit,
    verhoeff_valid,
)
from sandbox_mocks.population.ids import national_id_check_digit, sandbox_profile
from standards.identifiers import default_profile

SANDBOX = sandbox_profile()


def test_check_digit_matches_the_generator() -> None:
    rng = random.Random(7)
    for _ in range(500):
        body = str(rng.randrange(10**8, 10**9))
        assert verhoeff_digit(body) == national_id_check_digit(body)
        assert verhoeff_valid(body + verhoeff_digit(body))


def test_single_digit_errors_and_adjacent_swaps_are_caught() -> None:
    rng = random.Random(11)
    for _ in range(200):
        body = str(rng.randrange(10**8, 10**9))
        number = body + verhoeff_digit(body)
        position = rng.randrange(10)
        typo = number[:position] + str((int(number[position]) + 1) % 10) + number[position + 1 :]
        assert not is_valid_national_id(typo, SANDBOX)
        i = rng.randrange(9)
        if number[i] != number[i + 1]:
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
            assert not is_valid_national_id(swapped, SANDBOX)


def test_reasons_are_specific_and_do_not_echo_the_number() -> None:
    body = "683493142"
    good = body + verhoeff_digit(body)
    assert national_id_problem(good, "UIN", SANDBOX) is None
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert "check digit" in (national_id_problem(bad, "UIN", SANDBOX) or "")
    assert "10 digits" in (national_id_problem("12345", "UIN", SANDBOX) or "")
    assert "10 digits" in (national_id_problem("0" + good[1:], "UIN", SANDBOX) or "")
    assert "text" in (national_id_problem(6834931422, "UIN", SANDBOX) or "")
    assert "UIN or VID" in (national_id_problem(good, "PASSPORT", SANDBOX) or "")
    for value in (bad, "12345"):
        reason = national_id_problem(value, "UIN", SANDBOX) or ""
        assert reason.startswith("national_id") and value not in reason
    vid_body = "371591051525010"
    assert national_id_problem(vid_body + verhoeff_digit(vid_body), "VID", SANDBOX) is None
    assert "virtual_id" in (national_id_problem(vid_body + "0", "VID", SANDBOX) or "x")


def test_the_built_in_profile_checks_the_form_only() -> None:
    body = "683493142"
    bad = body + str((int(verhoeff_digit(body)) + 1) % 10)
    assert national_id_problem(bad) is None  # no check digit in the built-in profile
    assert national_id_problem(bad, "UIN", default_profile()) is None
    assert "national_id" in (national_id_problem("12#45") or "")
