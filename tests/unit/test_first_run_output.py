"""What `srhub run` prints and logs before anyone reads the docs: the login line and log levels."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hub.cli.run import login_lines
from hub.logging_setup import QUIET_LIBRARIES, configure_logging
from hub.settings import load_settings


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = (root.level, {name: logging.getLogger(name).level for name in QUIET_LIBRARIES})
    yield
    root.setLevel(saved[0])
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("level", ["INFO", "warning"])
def test_libraries_are_held_at_warning_below_debug(restore_logging, level: str):
    configure_logging(level)
    assert logging.getLogger().level == logging.getLevelName(level.upper())
    for name in ("pika", "werkzeug", "alembic"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
    # The hub's own loggers follow the chosen level.
    assert logging.getLogger("hub.workers.runtime").getEffectiveLevel() == logging.getLogger().level


def test_debug_lets_the_libraries_through(restore_logging):
    configure_logging("DEBUG")
    assert logging.getLogger("pika").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("werkzeug.serving").getEffectiveLevel() == logging.DEBUG


def test_embedded_login_line_names_the_token_file_not_the_token(tmp_path: Path):
    settings = load_settings(env={}, data_dir=tmp_path / "var")
    text = "\n".join(login_lines("http://127.0.0.1:8000", True, settings))
    assert str(settings.effective_admin_token_file) in text
    assert "eyJ" not in text  # no JWT


def test_production_login_line_says_how_to_make_the_first_admin(tmp_path: Path):
    settings = load_settings(
        env={}, data_dir=tmp_path / "var", amqp_url="amqp://guest:guest@127.0.0.1:5672/%2F"
    )
    text = "\n".join(login_lines("http://127.0.0.1:8000", False, settings))
    assert "admin-token" not in text
    assert "srhub users add NAME --role admin" in text
    assert "srhub token issue --role admin" in text
