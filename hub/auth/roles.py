"""Who a caller is (``Principal``) and what they may be (``Role``).

Roles are coarse on purpose: each route names the roles it admits, and the two finer scopes the
registry needs are carried on the principal itself: a field worker's administrative areas (they
may only touch households in their own districts) and a program system's program code (it may
only see its own subscriptions). Both are checked by small pure helpers here so that views, the
token code and the API key code all apply one rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from registry_core.areas import within_any

# Longest accepted area prefix / program code / subject; keeps tokens and rows small.
MAX_AREA_LENGTH = 64
MAX_PROGRAM_LENGTH = 64
MAX_SUBJECT_LENGTH = 200
MAX_AREAS = 200


class Role(StrEnum):
    """The roles a route may admit. Values are the strings used in tokens and the CLI."""

    admin = "admin"  # runs the hub: settings, keys, subscriptions, replays, everything
    registry_staff = "registry_staff"  # registry officers: households, verifications, queues
    field_worker = "field_worker"  # enumerators: register/update households in their areas
    supervisor = "supervisor"  # field supervisors: review field submissions in their areas
    program = "program"  # a program's system: its own subscriptions and notifications
    partner = "partner"  # a partner system: pushes data in (webhooks, DCI notify, search)
    auditor = "auditor"  # reads everything, changes nothing
    policymaker = "policymaker"  # aggregate reports and simulations only: no household, no person


# Roles whose holders are limited to a list of administrative areas (prefixes).
AREA_SCOPED_ROLES: frozenset[Role] = frozenset({Role.field_worker, Role.supervisor})
# Roles whose holders are not limited to a list of administrative areas.
UNSCOPED_AREA_ROLES: frozenset[Role] = frozenset({Role.admin, Role.registry_staff, Role.auditor})

# "password": a field user who logged in with HTTP Basic or Digest (hub.openrosa).
PrincipalKind = Literal["token", "api_key", "password"]


class GrantError(ValueError):
    """A requested set of roles, areas and program is inconsistent; the message says why."""


def parse_role(text: str) -> Role:
    """Turn ``text`` into a Role or raise GrantError naming the valid ones."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise GrantError(f"unknown role {text!r}; valid roles are: {valid}") from None


@dataclass(frozen=True)
class Grant:
    """A validated combination of roles and scopes, ready to put in a token or an API key."""

    roles: frozenset[Role]
    admin_areas: tuple[str, ...] = ()
    program: str | None = None


def validate_grant(
    roles: Iterable[Role | str], admin_areas: Iterable[str] = (), program: str | None = None
) -> Grant:
    """Check that roles and scopes fit together, so no credential is issued that means nothing.

    A field worker without areas could touch no household at all, and a program role without a
    program code could not be tied to any subscription: both are refused at issue time rather
    than discovered later as mysterious 403s. Empty area codes are refused because an empty
    prefix would match every household.
    """
    parsed = frozenset(r if isinstance(r, Role) else parse_role(r) for r in roles)
    if not parsed:
        raise GrantError("at least one role is required")
    areas: list[str] = []
    for raw in admin_areas:
        area = raw.strip()
        if not area:
            raise GrantError("an administrative area code may not be empty")
        if len(area) > MAX_AREA_LENGTH:
            raise GrantError(f"area code {area[:20]!r}... is longer than {MAX_AREA_LENGTH}")
        if area not in areas:
            areas.append(area)
    if len(areas) > MAX_AREAS:
        raise GrantError(f"at most {MAX_AREAS} areas per credential")
    for scoped in sorted(AREA_SCOPED_ROLES & parsed):
        if not areas:
            raise GrantError(f"role {scoped.value} needs at least one administrative area (--area)")
    if areas and parsed.isdisjoint(AREA_SCOPED_ROLES):
        raise GrantError("administrative areas only apply to the field_worker and supervisor roles")
    code = program.strip() if program else None
    if code and len(code) > MAX_PROGRAM_LENGTH:
        raise GrantError(f"program code is longer than {MAX_PROGRAM_LENGTH}")
    if Role.program in parsed and not code:
        raise GrantError("role program needs a program code (--program)")
    if code and Role.program not in parsed:
        raise GrantError("a program code only applies to the program role")
    return Grant(roles=parsed, admin_areas=tuple(areas), program=code or None)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request.

    ``token_id`` is the JWT ``jti`` or the API key id: it identifies the credential (for audit
    and revocation) without being a secret. ``expires_at`` is the token's expiry (None for API
    keys, which live until revoked).
    """

    subject: str
    roles: frozenset[Role]
    admin_areas: tuple[str, ...] = ()
    program: str | None = None
    kind: PrincipalKind = "token"
    token_id: str = ""
    expires_at: datetime | None = None
    key_id: str | None = None  # the signing key a token names (``kid``); None for API keys

    def has_any(self, roles: Iterable[Role]) -> bool:
        return not self.roles.isdisjoint(roles)

    @property
    def area_scoped(self) -> bool:
        """True when this caller may only touch households of its own areas."""
        return not self.roles.isdisjoint(AREA_SCOPED_ROLES) and self.roles.isdisjoint(
            UNSCOPED_AREA_ROLES
        )

    def may_touch_area(self, admin_area_code: str | None) -> bool:
        """Whether this caller may read or change a household in ``admin_area_code``.

        Area codes are a hierarchy of segments (``KE-30`` contains ``KE-30-01``, not
        ``KE-301``): ``registry_core.areas.is_within``. A household without an area is only
        for unscoped staff: guessing would put it in someone's district by accident. Program
        and partner systems get no household by area: their routes decide what they see.
        """
        if not self.area_scoped:
            return self.has_any(UNSCOPED_AREA_ROLES)
        if not admin_area_code:
            return False
        return within_any(admin_area_code, self.admin_areas)

    def may_act_for_program(self, program_code: str | None) -> bool:
        """Whether this caller may see or change things that belong to ``program_code``."""
        if self.has_any((Role.admin, Role.registry_staff, Role.auditor)):
            return True
        return Role.program in self.roles and bool(program_code) and program_code == self.program
