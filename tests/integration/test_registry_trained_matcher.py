"""The registry resolving incoming persons with a trained model (``SRHUB_MATCHER_MODEL``) instead
of the built-in matcher, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.census import census_style
from registry_core.matching import TrainedMatcher, TrainingOptions
from registry_core.service import Source

SURVEY = Source("field_survey", "f-1", datetime(2026, 1, 5, tzinfo=UTC))
HOME = {"address": "4 Baobab Road", "admin_area_code": "R01-D01-L001"}


@pytest.fixture(scope="module")
def trained() -> TrainedMatcher:
    records, _ = census_style(people=1000, seed=4)
    return TrainedMatcher.trained_on(records, TrainingOptions(u_samples=30_000))


@pytest.fixture
def trained_registry(db_engine, cipher, trained):
    from registry_core.db import make_session_factory
    from registry_core.service import Registry

    service = Registry(make_session_factory(db_engine), cipher, matcher=trained)
    service.ensure_identifier_systems()
    return service


def member(given, family, birth, sex, relationship):
    return {
        "given_name": given,
        "family_name": family,
        "birth_date": birth,
        "sex": sex,
        "relationship": relationship,
    }


def test_trained_model_resolves_typos_and_keeps_strangers_and_twins_apart(trained_registry):
    household = trained_registry.register_household(
        {
            **HOME,
            "members": [
                member("Wanjiru", "Kamau", "1979-03-14", "female", "head"),
                member("Otieno", "Kamau", "2004-11-02", "male", "child"),
                member("Neema", "Kamau", "2010-05-09", "female", "child"),
                member("Zuri", "Kamau", "2010-05-09", "female", "child"),
            ],
        },
        SURVEY,
    ).record
    ids = [m["id"] for m in household["members"]]
    noisy = trained_registry.resolve(
        {"given_name": "Otieon", "family_name": "Kamau", "birth_date": "2004-11-02", "sex": "male"},
        HOME,
    )
    assert (noisy.outcome, str(noisy.person_id), noisy.via) == ("match", ids[1], "matcher")
    stranger = trained_registry.resolve(
        {"given_name": "Zawadi", "family_name": "Mwangi", "birth_date": "1990-01-01"}
    )
    assert stranger.outcome == "no_match"
    # A twin's record with a given name neither twin has is not merged into either.
    twin = trained_registry.resolve(
        {"given_name": "Amani", "family_name": "Kamau", "birth_date": "2010-05-09"}, HOME
    )
    assert twin.outcome in ("review", "no_match") and twin.person_id is None
