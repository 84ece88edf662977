"""Saving a password user: the one way the CLI (``srhub users add``) and the sandbox's field
team create accounts, so both store the same things (scrypt hash, role, areas and, for field
users, the sealed Digest password-equivalents devices need)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from hub.auth.roles import validate_grant
from hub.openrosa.credentials import seal_digest_secrets
from hub.ui.passwords import hash_password
from hub.ui.tables import UiUser
from registry_core.crypto import IdentifierCipher


class UserExists(ValueError):
    """The user exists and the caller did not ask to replace it."""


def save_user(
    session: Session,
    cipher: IdentifierCipher,
    realm: str,
    *,
    username: str,
    role: str,
    areas: Sequence[str],
    password: str,
    replace: bool = False,
) -> bool:
    """Create (or with ``replace`` reset) ``username``; True when created.

    Raises ``GrantError`` (role and areas do not fit), ``PasswordPolicyError`` (the password is
    too weak) or ``UserExists``. Only users with areas (field workers, supervisors) get Digest
    secrets: staff never log in from a device.
    """
    grant = validate_grant([role], areas)
    hashed = hash_password(password)
    sealed = seal_digest_secrets(cipher, realm, username, password) if grant.admin_areas else None
    area_text = UiUser.encode_areas(grant.admin_areas)
    user = session.get(UiUser, username)
    if user is not None and not replace:
        raise UserExists(f"user {username!r} exists; pass --replace to reset it")
    if user is None:
        session.add(
            UiUser(
                username=username,
                password_hash=hashed,
                role=role,
                active=True,
                areas=area_text,
                digest_ha1=sealed,
            )
        )
        return True
    user.password_hash, user.role, user.active = hashed, role, True
    user.areas, user.digest_ha1 = area_text, sealed
    return False
