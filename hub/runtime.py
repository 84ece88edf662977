"""Wiring the hub's long-lived parts from settings, once per process.

The API, the workers and the CLI all need the same engine, session factory, keys and registry
services; building them in one place keeps their configuration identical everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.settings import (
    ENV_PREFIX,
    Keys,
    Settings,
    SettingsError,
    identifier_cipher,
    load_identifier_profile,
    load_keys,
    load_person_matcher,
)
from registry_core.crypto import IdentifierCipher
from registry_core.db import make_engine, make_session_factory
from registry_core.matching import PersonMatcher
from registry_core.precedence import SourcePrecedence
from registry_core.recertification import RecertificationPolicy
from registry_core.service import Registry
from standards.identifiers import IdentifierProfile


def recertification_policy(settings: Settings) -> RecertificationPolicy:
    config = settings.recertification
    return RecertificationPolicy(
        interval_days=config.interval_days,
        reminder_days=config.reminder_days,
        grace_days=config.grace_days,
        program_intervals=config.intervals_by_program(),
    )


@dataclass
class HubRuntime:
    settings: Settings

    @cached_property
    def keys(self) -> Keys:
        return load_keys(self.settings)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def identifier_profile(self) -> IdentifierProfile:
        """The country profile (``SRHUB_IDENTIFIER_PROFILE``, else the built-in one)."""
        return load_identifier_profile(self.settings)

    @cached_property
    def cipher(self) -> IdentifierCipher:
        return identifier_cipher(self.settings, self.keys, self.identifier_profile)

    @cached_property
    def precedence(self) -> SourcePrecedence:
        path = self.settings.precedence_file
        if str(path) in ("", "."):
            return SourcePrecedence.default()
        try:
            return SourcePrecedence.from_file(path)
        except (OSError, ValueError) as exc:  # missing, unreadable, not TOML / JSON
            reason = getattr(exc, "strerror", None) or str(exc)
            raise SettingsError(
                f"{ENV_PREFIX}PRECEDENCE_FILE: cannot read {path}: {reason}"
            ) from None

    @cached_property
    def recertification(self) -> RecertificationPolicy:
        """The recertification policy (``settings.recertification``)."""
        return recertification_policy(self.settings)

    @cached_property
    def matcher(self) -> PersonMatcher:
        """Who resolves incoming persons: the trained model ``settings.matcher_model`` names,
        or the built-in matcher (``hub.settings.load_person_matcher``)."""
        return load_person_matcher(self.settings)

    @cached_property
    def registry(self) -> Registry:
        return Registry(
            self.sessions,
            self.cipher,
            self.precedence,
            matcher=self.matcher,
            recertification=self.recertification,
        )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
