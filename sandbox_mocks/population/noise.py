"""Data-entry noise: how a partner's copy of a person drifts from the truth.

Why: if every partner held the exact truth, linking their records would be a join. Real
registries hold typos, names in the other order, day and month swapped, blanks. Each mock shows
the hub its own noisy copy, so the hub's matcher faces a real problem. ``partner_view`` makes the
noise stable: the same partner always shows the same (wrong) record for the same person.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date

from sandbox_mocks.population.model import Person

# Neighbouring keys on a QWERTY keyboard: most substitution typos hit a neighbour.
_NEIGHBOURS = {
    "a": "qwsz",
    "b": "vghn",
    "c": "xdfv",
    "d": "serfcx",
    "e": "wsdr",
    "f": "drtgvc",
    "g": "ftyhbv",
    "h": "gyujnb",
    "i": "ujko",
    "j": "huikmn",
    "k": "jiolm",
    "l": "kop",
    "m": "njk",
    "n": "bhjm",
    "o": "iklp",
    "p": "ol",
    "q": "wa",
    "r": "edft",
    "s": "awedxz",
    "t": "rfgy",
    "u": "yhji",
    "v": "cfgb",
    "w": "qase",
    "x": "zsdc",
    "y": "tghu",
    "z": "asx",
}
OPTIONAL_FIELDS = ("phone", "birth_registration_number", "national_id", "tax_id")
NOISE_KINDS = (
    "typo_given",
    "typo_family",
    "swap_names",
    "missing_field",
    "date_error",
    "sex_error",
)
_KIND_WEIGHTS = (0.28, 0.28, 0.14, 0.18, 0.10, 0.02)


def typo(rng: random.Random, word: str) -> str:
    """One keying error: neighbour-key substitution, dropped, doubled or swapped letters."""
    if len(word) < 2:
        return word
    i = rng.randrange(len(word))
    kind = rng.random()
    if kind < 0.4:
        ch = word[i].lower()
        sub = rng.choice(_NEIGHBOURS.get(ch, "aeiou"))
        sub = sub.upper() if word[i].isupper() else sub
        return word[:i] + sub + word[i + 1 :]
    if kind < 0.6:
        return word[:i] + word[i + 1 :] if len(word) > 2 else word
    if kind < 0.8:
        return word[:i] + word[i] + word[i:]
    i = min(i, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _date_error(rng: random.Random, value: date) -> date:
    """Day and month swapped when both could be a month, else off by a day or a year."""
    if value.day <= 12 and value.day != value.month and rng.random() < 0.5:
        return value.replace(month=value.day, day=value.month)
    if rng.random() < 0.5:
        return date.fromordinal(value.toordinal() + rng.choice((-1, 1)))
    try:
        return value.replace(year=value.year + rng.choice((-1, 1)))
    except ValueError:  # 29 February
        return value.replace(year=value.year + rng.choice((-1, 1)), day=28)


def apply_noise(
    person: Person, rng: random.Random, rate: float, keep: frozenset[str] = frozenset()
) -> Person:
    """With probability ``rate`` return a copy with one (70%) or two data-entry errors.

    ``keep`` names fields that must stay exact (e.g. the national ID authority never blanks the
    national ID it is keyed by). Returns ``person`` itself when no noise is drawn.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be within 0..1")
    if rng.random() >= rate:
        return person
    changes: dict[str, object] = {}
    for _ in range(1 if rng.random() < 0.7 else 2):
        kind = rng.choices(NOISE_KINDS, _KIND_WEIGHTS)[0]
        given = str(changes.get("given_name", person.given_name))
        family = str(changes.get("family_name", person.family_name))
        if kind == "typo_given" and "given_name" not in keep:
            changes["given_name"] = typo(rng, given)
        elif kind == "typo_family" and "family_name" not in keep:
            changes["family_name"] = typo(rng, family)
        elif kind == "swap_names" and not keep & {"given_name", "family_name"}:
            changes["given_name"], changes["family_name"] = family, given
        elif kind == "missing_field":
            present = [f for f in OPTIONAL_FIELDS if getattr(person, f) and f not in keep]
            if present:
                changes[rng.choice(present)] = None
        elif kind == "date_error" and "birth_date" not in keep:
            changes["birth_date"] = _date_error(rng, person.birth_date)
        elif kind == "sex_error" and "sex" not in keep:
            changes["sex"] = "female" if person.sex == "male" else "male"
    return replace(person, **changes) if changes else person  # type: ignore[arg-type]


def partner_view(
    person: Person, partner: str, seed: int, rate: float, keep: frozenset[str] = frozenset()
) -> Person:
    """The record ``partner`` holds for ``person``: noisy, but the same on every call."""
    rng = random.Random(f"noise:{partner}:{seed}:{person.person_key}")
    return apply_noise(person, rng, rate, keep)
