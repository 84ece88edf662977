"""A form's media files: which names a form refers to, and what a media upload must be.

An XForm refers to its media by name (``jr://file/NAME``, ``jr://file-csv/NAME`` for an
external choice list, ``jr://images/NAME``); a device downloads them through the manifest. So
an uploaded file's name is part of the form's contract: a plain file name, no folders.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hub.intake.contract import MediaFile
from hub.intake.errors import FormRefused

MAX_MEDIA_FILES = 50
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_REFERENCE = re.compile(rb"jr://(?:file|file-csv|images|audio|video)/([^\"'<>\s)]+)")


def referenced_media(xform: bytes) -> list[str]:
    """The media file names an XForm refers to, in order of first mention."""
    found: list[str] = []
    for match in _REFERENCE.finditer(xform):
        name = match.group(1).decode("utf-8", "replace")
        if name not in found:
            found.append(name)
    return found


def media_file(name: str | None, content_type: str | None, content: bytes) -> MediaFile:
    """One uploaded media file, or ``FormRefused`` saying what its name must be."""
    plain = (name or "").strip()
    if not _NAME.match(plain):
        raise FormRefused(
            "a media file needs a plain file name (letters, digits, '.', '_', '-'; no folders)"
        )
    return MediaFile(plain, content_type or "application/octet-stream", content)


def check_media_set(media: Sequence[MediaFile]) -> None:
    """At most ``MAX_MEDIA_FILES``, no two with the same name."""
    if len(media) > MAX_MEDIA_FILES:
        raise FormRefused(f"at most {MAX_MEDIA_FILES} media files per form version")
    if len({m.name for m in media}) != len(media):
        raise FormRefused("two media files have the same name")
