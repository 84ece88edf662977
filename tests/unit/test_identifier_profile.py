"""Check-digit schemes against published test vectors, and the country profile: its rules,
its normalisation, and its loader refusing faulty files with every key and reason."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from hub.settings import SettingsError, load_identifier_profile, load_settings
from registry_core.crypto import IdentifierCipher
from sandbox_mocks.population.ids import SANDBOX_PROFILE_PATH, sandbox_profile
from standards.identifiers import (
    CHECK_DIGITS,
    REQUIRED_SYSTEMS,
    CheckDigitScheme,
    InvalidIdentifier,
    ProfileError,
    default_profile,
    iso7064_mod11_2_check_char,
    iso7064_mod11_2_is_valid,
    load_profile,
    luhn_check_digit,
    luhn_is_valid,
    parse_profile,
    register_check_digit,
    verhoeff_check_digit,
    verhoeff_is_valid,
)


def single_errors(number: str, alphabet: str = "0123456789") -> list[str]:
    return [
        number[:i] + d + number[i + 1 :]
        for i in range(len(number))
        for d in alphabet
        if d != number[i]
    ]


def adjacent_swaps(number: str) -> list[str]:
    swaps = [
        number[:i] + number[i + 1] + number[i] + number[i + 2 :] for i in range(len(number) - 1)
    ]
    return [s for s in swaps if s != number]


# ---------------------------------------------------------------------------- check digits


def test_verhoeff_published_examples() -> None:
    # Verhoeff (1969) as reproduced in the usual references: 236 -> 3, 12345 -> 1, 142857 -> 0.
    assert [verhoeff_check_digit(b) for b in ("236", "12345", "142857")] == ["3", "1", "0"]
    assert verhoeff_is_valid("2363") and verhoeff_is_valid("123451")
    assert not verhoeff_is_valid("2364") and not verhoeff_is_valid("123415")
    number = "8473643095" + verhoeff_check_digit("8473643095")
    assert not any(verhoeff_is_valid(n) for n in single_errors(number) + adjacent_swaps(number))


def test_luhn_published_examples_and_its_known_blind_spot() -> None:
    assert luhn_is_valid("79927398713")  # the classic example
    assert luhn_check_digit("7992739871") == "3"
    assert not luhn_is_valid("79927398710")
    assert luhn_is_valid("4111111111111111")  # a card number published for testing
    assert not any(luhn_is_valid(n) for n in single_errors("79927398713"))
    # Luhn cannot see 09 <-> 90: both numbers carry the same check digit.
    assert luhn_check_digit("1090") == luhn_check_digit("1900")


def test_iso7064_mod11_2_published_examples() -> None:
    # ORCID's documented identifiers (the last one's check character is X) and the example
    # resident ID number commonly given for China's GB 11643.
    for number in (
        "0000000218250097",
        "0000000151093700",
        "000000021694233X",
        "11010519491231002X",
    ):
        assert iso7064_mod11_2_is_valid(number), number
    assert iso7064_mod11_2_check_char("000000021825009") == "7"
    assert iso7064_mod11_2_check_char("000000021694233") == "X"
    assert not iso7064_mod11_2_is_valid("0000000218250096")
    wrong = single_errors("0000000218250097") + adjacent_swaps("0000000218250097")
    assert not any(iso7064_mod11_2_is_valid(n) for n in wrong)
    assert not iso7064_mod11_2_is_valid("X000000218250097")


def test_schemes_refuse_bodies_that_are_not_digits() -> None:
    for compute in (verhoeff_check_digit, luhn_check_digit, iso7064_mod11_2_check_char):
        for body in ("", "12a", "١٢٣"):  # empty, a letter, Arabic-Indic digits
            with pytest.raises(ValueError):
                compute(body)
    assert not verhoeff_is_valid("7") and not luhn_is_valid("0") and not luhn_is_valid("12 3")


# ---------------------------------------------------------------------------- the profile


def default_data() -> dict[str, Any]:
    text = resources.files("standards.identifiers").joinpath("default.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_default_profile_has_every_required_system_and_no_check_digit() -> None:
    profile = default_profile()
    assert set(REQUIRED_SYSTEMS) <= set(profile.systems)
    assert all(rule.check is None for rule in profile)
    assert profile.system_for_dci_type("UIN") == "national_id"
    # A real OpenCRVS-style national ID with no valid check digit passes; a value with a
    # character no identifier has does not.
    assert profile.check("national_id", "1234567890") == "1234567890"
    with pytest.raises(InvalidIdentifier) as caught:
        profile.check("national_id", "12#4")
    assert (caught.value.system, caught.value.rule) == ("national_id", "pattern")


def test_sandbox_profile_turns_verhoeff_on_for_its_national_ids() -> None:
    sandbox = sandbox_profile()
    assert sandbox.rule("national_id").check is CHECK_DIGITS["verhoeff"]
    assert sandbox.rule("virtual_id").check is CHECK_DIGITS["verhoeff"]
    good = "683493142" + verhoeff_check_digit("683493142")
    assert sandbox.problem("national_id", good) is None
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    problem = sandbox.problem("national_id", bad)
    assert problem is not None and problem.rule == "check_digit"
    assert bad not in problem.reason and problem.reason.startswith("national_id")


def test_the_built_in_normalisation_is_the_one_stored_hashes_were_made_with() -> None:
    """Existing databases hold hashes of ``[\\s\\-./]+`` removed and upper-cased values: the
    built-in profile must give exactly those, or stored people would no longer be found."""
    old = re.compile(r"[\s\-./]+")
    rng = random.Random(3)
    alphabet = "abcXYZ019 -./\t_#éß"
    key = b"k" * 32
    cipher = IdentifierCipher(b"e" * 32, key)
    for _ in range(500):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        expected = old.sub("", value).upper()
        assert default_profile().normalise("national_id", value) == expected
        digest = hmac.new(key, f"national_id\x00{expected}".encode(), hashlib.sha256).hexdigest()
        assert cipher.lookup_hash("national_id", value) == digest


def test_normalisation_options() -> None:
    data = default_data()
    data["systems"]["tax_id"]["normalise"] = {"leading_zeros": "strip", "remove": "-"}
    data["systems"]["national_id"]["normalise"] = {"case": "keep"}
    data["systems"]["national_id"]["pattern"] = "[0-9A-Za-z]{1,32}"
    profile = parse_profile(data, "t")
    assert profile.normalise("tax_id", " 00-12 34 ") == "1234"
    assert profile.normalise("tax_id", "000") == "0"
    assert profile.normalise("tax_id", "12.34") == "12.34"  # only '-' is a separator here
    assert profile.normalise("national_id", "ab-12") == "ab12"
    assert profile.normalise("birth_registration", "br-1") == "BR1"  # [normalise] defaults
    assert profile.normalise("unknown_system", "x-1") == "X1"  # unnamed: the defaults too
    cipher = IdentifierCipher(b"e" * 32, b"h" * 32, profile)
    assert cipher.lookup_hash("tax_id", "0001234") == cipher.lookup_hash("tax_id", "1234")
    assert cipher.decrypt("tax_id", cipher.encrypt("tax_id", "0012-34")) == "1234"


def test_a_country_can_register_its_own_check_digit_scheme() -> None:
    def even(number: str) -> bool:
        return number.isdigit() and sum(map(int, number)) % 2 == 0

    register_check_digit(CheckDigitScheme("even_sum", "even-sum", lambda b: "0", even))
    try:
        data = default_data()
        data["systems"]["tax_id"]["check"] = "even_sum"
        profile = parse_profile(data, "t")
        assert profile.check("tax_id", "1 1") == "11"
        with pytest.raises(InvalidIdentifier, match="even-sum check digit"):
            profile.check("tax_id", "12")
    finally:
        del CHECK_DIGITS["even_sum"]
    with pytest.raises(ValueError):
        register_check_digit(CheckDigitScheme("none", "x", lambda b: "0", even))


# ---------------------------------------------------------------------------- bad files


def problems_of(data: Any) -> dict[str, str]:
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, "country.toml")
    assert str(caught.value).startswith("country.toml: ")
    return dict(caught.value.problems)


def test_each_fault_names_its_key_and_reason_and_all_are_reported_at_once() -> None:
    data = default_data()
    nid = data["systems"]["national_id"]
    nid.update(
        check="verhof",
        pattern="[0-9",
        colour="red",
        dci_identifier_type="U I N",
        normalise={"case": "title", "remove": "-0"},
    )
    data["systems"]["tax_id"]["pattern"] = "[0-9]*"
    data["systems"]["birth_registration"]["fhir_system"] = "not a uri"
    data["systems"]["death_registration"]["dci_identifier_type"] = "BRN"
    data["systems"]["Passport"] = {"description": "x"}
    data["systems"]["passport_xx"] = {"pattern": "[A-Z]{2}[0-9]{7}"}
    del data["systems"]["program_beneficiary_id"]
    data["normalise"]["leading_zeros"] = "drop"
    data["extra"] = 1
    found = problems_of(data)
    assert "unknown check 'verhof'" in found["systems.national_id.check"]
    assert "verhoeff" in found["systems.national_id.check"]  # the known names are listed
    assert "not a regular expression" in found["systems.national_id.pattern"]
    assert "unknown key" in found["systems.national_id.colour"]
    assert "upper, lower, keep" in found["systems.national_id.normalise.case"]
    assert "no letters or digits" in found["systems.national_id.normalise.remove"]
    assert "UIN" in found["systems.national_id.dci_identifier_type"]
    assert "empty value" in found["systems.tax_id.pattern"]
    assert "absolute URI" in found["systems.birth_registration.fhir_system"]
    assert (
        "already the dci_identifier_type of birth_registration"
        in found["systems.death_registration.dci_identifier_type"]
    )
    assert "lower-case" in found["systems.Passport"]
    assert "is required" in found["systems.passport_xx.description"]
    assert "is required" in found["systems.program_beneficiary_id"]
    assert "keep, strip" in found["normalise.leading_zeros"]
    assert "unknown key" in found["extra"]


def test_files_that_cannot_be_read_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"\$: cannot be read"):
        load_profile(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[systems.national_id\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(broken)
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(empty)
    found = dict(caught.value.problems)
    assert "profile.name" in found and "systems" in found


def test_settings_refuse_a_bad_profile_at_start_naming_the_setting_and_key(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "country.toml"
    bad.write_text(
        SANDBOX_PROFILE_PATH.read_text(encoding="utf-8").replace(
            'check = "verhoeff"', 'check = "damm"', 1
        ),
        encoding="utf-8",
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"SRHUB_IDENTIFIER_PROFILE": str(bad), "SRHUB_DATA_DIR": str(tmp_path)})
    message = str(caught.value)
    assert message.startswith("SRHUB_IDENTIFIER_PROFILE: ")
    assert str(bad) in message and "systems.national_id.check" in message and "damm" in message
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings(env={"SRHUB_IDENTIFIER_PROFILE": str(tmp_path / "nope.toml")})
    good = load_settings(env={"SRHUB_IDENTIFIER_PROFILE": str(SANDBOX_PROFILE_PATH)})
    assert load_identifier_profile(good).name == "sandbox"
    assert load_identifier_profile(load_settings(env={})).name == "default"


def test_srhub_run_uses_the_sandbox_profile_while_the_sandbox_runs(tmp_path: Path) -> None:
    from hub.cli.run import with_sandbox_profile
    from sandbox_mocks.launcher import SANDBOX_IDENTIFIER_PROFILE

    plain = load_settings(env={})
    chosen = with_sandbox_profile(plain, sandbox=True)
    assert chosen.identifier_profile == SANDBOX_IDENTIFIER_PROFILE
    assert load_identifier_profile(chosen).rule("national_id").check is CHECK_DIGITS["verhoeff"]
    assert with_sandbox_profile(plain, sandbox=False) is plain  # --no-sandbox: built-in
    own = tmp_path / "country.toml"
    own.write_text(SANDBOX_PROFILE_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    explicit = load_settings(env={"SRHUB_IDENTIFIER_PROFILE": str(own)})
    assert with_sandbox_profile(explicit, sandbox=True).identifier_profile == own


def test_a_command_started_with_a_bad_profile_stops_with_the_reason(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hub.cli import main

    bad = tmp_path / "country.toml"
    bad.write_text('[profile]\nname = "x"\n[systems.national_id]\ncheck = "luhn"\n', "utf-8")
    result = CliRunner().invoke(
        main,
        ["run", "--no-sandbox", "--no-workers"],
        env={"SRHUB_IDENTIFIER_PROFILE": str(bad), "SRHUB_DATA_DIR": str(tmp_path / "var")},
    )
    assert result.exit_code == 3  # a setting is malformed (hub.cli.errors)
    assert "Traceback" not in result.output
    assert "SRHUB_IDENTIFIER_PROFILE" in result.output
    assert "systems.national_id.description: is required" in result.output
    assert not (tmp_path / "var").exists()  # stopped before touching anything
