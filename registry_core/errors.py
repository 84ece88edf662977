"""Errors the registry services raise. They carry no HTTP knowledge; the API maps them.

Messages never contain identifier values or names: they may reach logs and partner systems.
"""

from __future__ import annotations

from standards.validation import SchemaViolation, Violation

__all__ = [
    "BusinessRuleViolation",
    "ConflictError",
    "DuplicateIdentifier",
    "InvalidRecord",
    "NotFound",
    "RegistryError",
    "SchemaViolation",
    "Violation",
]


class RegistryError(Exception):
    """Base of the registry's own errors."""


class NotFound(RegistryError):
    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"no {kind} with id {key}")
        self.kind = kind
        self.key = str(key)


class ConflictError(RegistryError):
    """The record changed since the caller read it (stale version) or a concurrent writer won."""

    def __init__(self, message: str, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class DuplicateIdentifier(ConflictError):
    """An identifier given for a new person already belongs to someone in the registry.

    The message does not name that person: it reaches callers (a field worker registering a
    member) who may not see them, and would tell them who holds a national ID and where to
    look. ``existing_person_id`` stays on the error for code that may use it."""

    def __init__(self, system: str, existing_person_id: object) -> None:
        super().__init__(
            f"an identifier of system {system} given here already belongs to another person "
            "in the registry; registry staff can find and link that record"
        )
        self.system = system
        self.existing_person_id = str(existing_person_id)


class InvalidRecord(RegistryError):
    """The record is well-formed but cannot be applied (unknown identifier system, ...)."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.path}: {v.message}" for v in violations))
        self.violations = violations


class BusinessRuleViolation(RegistryError):
    """The change breaks a registry rule (e.g. adding a deceased person to a household)."""
