"""The recertification policy's date arithmetic: due dates, the reminder window, grace,
the state on a given day, and settings that cannot be honoured."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from hub.runtime import recertification_policy
from hub.settings import SettingsError, load_settings
from registry_core.recertification import RecertificationPolicy, RecertificationState

CURRENT, DUE, OVERDUE = RecertificationState.ALL


def test_the_due_date_is_the_interval_after_the_certification_day() -> None:
    policy = RecertificationPolicy(interval_days=730)
    late_evening = datetime(2024, 2, 29, 23, 59, tzinfo=UTC)
    assert policy.due_on(late_evening) == date(2026, 2, 28)  # 730 days, leap day included
    assert policy.due_on(date(2025, 1, 1)) == date(2027, 1, 1)


@pytest.mark.parametrize(
    ("offset", "state"),
    [
        (-61, CURRENT),  # the day before the reminder window
        (-60, DUE),  # its first day
        (0, DUE),  # the due date itself
        (1, OVERDUE),  # no grace: the next day
        (400, OVERDUE),
    ],
)
def test_the_state_on_a_day_around_the_due_date(offset: int, state: str) -> None:
    policy = RecertificationPolicy(interval_days=730, reminder_days=60, grace_days=0)
    due = date(2026, 6, 30)
    assert policy.state_on(due, due + timedelta(days=offset)) == state


def test_grace_delays_overdue_and_no_reminder_window_means_due_on_the_day() -> None:
    policy = RecertificationPolicy(interval_days=365, reminder_days=0, grace_days=14)
    due = date(2026, 1, 31)
    assert policy.state_on(due, due - timedelta(days=1)) == CURRENT
    assert policy.state_on(due, due) == DUE
    assert policy.state_on(due, due + timedelta(days=14)) == DUE
    assert policy.state_on(due, due + timedelta(days=15)) == OVERDUE
    assert policy.latest_due_overdue(due + timedelta(days=15)) == due
    assert policy.latest_due_in_window(due) == due


def test_a_policy_that_cannot_be_honoured_is_refused() -> None:
    with pytest.raises(ValueError, match="interval_days"):
        RecertificationPolicy(interval_days=0)
    with pytest.raises(ValueError, match="negative"):
        RecertificationPolicy(reminder_days=-1)


def test_the_settings_section_becomes_the_policy(tmp_path) -> None:
    env = {"SRHUB_RECERTIFICATION": '{"interval_days": 365, "reminder_days": 30}'}
    settings = load_settings(env=env, data_dir=tmp_path)
    assert recertification_policy(settings) == RecertificationPolicy(365, 30, 0)
    assert recertification_policy(load_settings(env={}, data_dir=tmp_path)) == (
        RecertificationPolicy(730, 60, 0)
    )
    with pytest.raises(SettingsError, match=r"(?i)interval_days"):
        load_settings(env={"SRHUB_RECERTIFICATION__INTERVAL_DAYS": "0"}, data_dir=tmp_path)


def test_a_household_in_programs_is_due_after_the_shortest_of_their_intervals() -> None:
    policy = RecertificationPolicy(
        interval_days=730, program_intervals={"CT": 365, "OAP": 1095, "FOOD": 180}
    )
    day = date(2025, 3, 1)
    assert policy.due_on(day) == day + timedelta(days=730)  # in no program
    assert policy.due_on(day, ["OAP"]) == day + timedelta(days=1095)  # its own, even if longer
    assert policy.due_on(day, ["OAP", "CT"]) == day + timedelta(days=365)
    assert policy.due_on(day, {"CT", "FOOD", "OAP"}) == day + timedelta(days=180)
    # A program without an interval of its own counts the registry-wide one.
    assert policy.due_on(day, ["OAP", "UNLISTED"]) == day + timedelta(days=730)
    assert policy.per_program and not RecertificationPolicy().per_program


def test_a_program_interval_below_one_day_is_refused() -> None:
    with pytest.raises(ValueError, match="'CT'"):
        RecertificationPolicy(program_intervals={"CT": 0})


def test_program_intervals_in_settings_become_the_policy(tmp_path) -> None:
    env = {"SRHUB_RECERTIFICATION__PROGRAM_INTERVALS": "CT=365, OAP = 1095"}
    policy = recertification_policy(load_settings(env=env, data_dir=tmp_path))
    assert policy.program_intervals == {"CT": 365, "OAP": 1095}
    assert policy.interval_days == 730
    toml = tmp_path / "srhub.toml"
    toml.write_text('[srhub.recertification]\nprogram_intervals = ["FOOD=180"]\n')
    from_file = recertification_policy(
        load_settings(env={"SRHUB_CONFIG": str(toml)}, data_dir=tmp_path)
    )
    assert from_file.program_intervals == {"FOOD": 180}


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("CT", "is not <program code>=<days>"),
        ("CT=soon", "is not <program code>=<days>"),
        ("=365", "is not <program code>=<days>"),
        ("CT=-5", "is not <program code>=<days>"),
        ("CT=0", "at least 1"),
        ("CT=365,CT=180", "given twice"),
    ],
)
def test_program_intervals_that_cannot_be_honoured_stop_the_hub(
    tmp_path, written: str, reason: str
) -> None:
    env = {"SRHUB_RECERTIFICATION__PROGRAM_INTERVALS": written}
    with pytest.raises(SettingsError, match=rf"(?i)program_intervals.*{reason}"):
        load_settings(env=env, data_dir=tmp_path)
