"""The hook that turns a form's *other* questions into socio-economic attributes.

A field form carries the registry's core questions (names, sex, birth date, area...), which a
spec maps one by one, and any number of questions a program added later. Those must reach the
registry with no code and no migration: ``xform_other_questions`` gives every answered
question the spec does not list in ``known`` as an attribute named after the question, in the
domain of the group it sits in (``income``, ``dwelling``, ``asset``; else ``other``).

The record it reads is the intake core's flattened instance (``hub.intake.instance``):
``{"answers": {name: value}, "domains": {name: domain}}``.
"""

from __future__ import annotations

import re
from typing import Any

from mappings.context import Context
from mappings.hooks import HookResult, hook
from mappings.paths import Located
from mappings.transforms import Param

DOMAINS = ("income", "dwelling", "asset", "other")
_NOT_NAME = re.compile(r"[^a-z0-9_]+")
MAX_ATTRIBUTES = 200


def attribute_name(question: str) -> str:
    """A question name as an attribute name (``^[a-z][a-z0-9_]{0,63}$``)."""
    name = _NOT_NAME.sub("_", question.strip().lower()).strip("_")
    if not name or not name[0].isalpha():
        name = "q_" + name
    return name[:64]


def attribute_value(value: Any) -> Any:
    """What an attribute may hold: a number, text or a yes/no; a point becomes its text."""
    if isinstance(value, dict) and "lat" in value and "lon" in value:
        return f"{value['lat']} {value['lon']}"
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


@hook(
    "xform_other_questions",
    {"known": Param((list,), required=True), "answers": Param((str,))},
    path_params=("answers",),
)
def xform_other_questions(
    context: Context, known: list[str], answers: str = "$.answers"
) -> HookResult:
    """Each answered question not in ``known`` as ``{domain, name, value}`` (in form order)."""
    found = context.first(answers)
    if found is None or not isinstance(found.value, dict):
        return None
    domains = context.record.get("domains", {}) if isinstance(context.record, dict) else {}
    skip = set(known)
    hits: list[Located] = []
    for question, value in found.value.items():
        if question in skip or question.startswith("_") or value in ("", None):
            continue
        domain = domains.get(question, "other")
        hits.append(
            Located(
                {
                    "domain": domain if domain in DOMAINS else "other",
                    "name": attribute_name(question),
                    "value": attribute_value(value),
                },
                f"{found.path}.{question}",
            )
        )
        if len(hits) >= MAX_ATTRIBUTES:
            break
    return hits
