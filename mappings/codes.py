"""Code lists: partner vocabularies (``M``, ``2``, ``Wife``...) -> canonical codes.

Why data files: a ministry adds a partner's spelling of "female" by editing JSON, not Python,
and a reviewer sees every accepted synonym in one place. Each file under
``mappings/codelists/`` maps a canonical code to the synonyms partners use; matching ignores case
and surrounding blanks. A synonym listed under two codes is refused at load time, because the
mapping would then depend on file order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

PACKAGE = "mappings.codelists"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class CodeListError(ValueError):
    """A code list file is missing or malformed."""


@dataclass(frozen=True)
class CodeList:
    name: str
    codes: tuple[str, ...]
    lookup: dict[str, str]  # normalised synonym -> canonical code

    def resolve(self, value: str) -> str | None:
        return self.lookup.get(normalise(value))


def normalise(value: str) -> str:
    return " ".join(value.split()).casefold()


def available() -> list[str]:
    return sorted(
        entry.name.removesuffix(".json")
        for entry in resources.files(PACKAGE).iterdir()
        if entry.name.endswith(".json")
    )


@cache
def load(name: str) -> CodeList:
    """The code list ``name`` (file ``mappings/codelists/<name>.json``)."""
    if not _NAME.match(name):
        raise CodeListError(f"{name!r} is not a code list name")
    source = resources.files(PACKAGE) / f"{name}.json"
    if not source.is_file():
        raise CodeListError(f"no code list {name!r}; known: {', '.join(available())}")
    data = json.loads(source.read_text(encoding="utf-8"))
    return from_data(name, data, f"mappings/codelists/{name}.json")


def from_data(name: str, data: object, where: str) -> CodeList:
    """Build and check a code list from parsed JSON; ``where`` names it in errors."""
    codes = data.get("codes") if isinstance(data, dict) else None
    if not isinstance(codes, dict) or not codes:
        raise CodeListError(f"{where}: needs a non-empty object 'codes'")
    lookup: dict[str, str] = {}
    for code, synonyms in codes.items():
        if not isinstance(synonyms, list) or not all(isinstance(s, str) for s in synonyms):
            raise CodeListError(f"{where}: $.codes.{code} must be a list of strings")
        for synonym in [code, *synonyms]:
            key = normalise(synonym)
            if lookup.get(key, code) != code:
                raise CodeListError(
                    f"{where}: synonym {synonym!r} is listed under both "
                    f"{lookup[key]!r} and {code!r}"
                )
            lookup[key] = code
    return CodeList(name, tuple(codes), lookup)
