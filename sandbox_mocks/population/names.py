"""Name pools of the fictional country, with realistic (Zipf-like) frequencies.

Why syllables instead of a list of real names: the sandbox must never look like real people, and
a pool built from syllables gives thousands of names with the property record linkage cares
about: a few very common family names (many true namesakes) and a long tail of rare ones.
The pools are the country's culture, so they are fixed (the same for every seed); the seed only
changes which people carry which names.
"""

from __future__ import annotations

import random
from bisect import bisect
from itertools import accumulate

_ONSETS = (
    "b",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "r",
    "s",
    "t",
    "v",
    "z",
    "h",
    "j",
    "ch",
    "sh",
    "th",
    "br",
    "dr",
    "kr",
    "tr",
    "pl",
    "st",
    "gr",
    "mb",
    "nd",
)
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou", "ia")
_MALE_ENDINGS = ("o", "an", "el", "ir", "us", "en", "ar", "im", "or", "ek", "u")
_FEMALE_ENDINGS = ("a", "ia", "ina", "elle", "ara", "i", "ette", "ana", "ie", "ola", "ya")
_FAMILY_ENDINGS = (
    "ov",
    "ez",
    "son",
    "ani",
    "ski",
    "ello",
    "ura",
    "eda",
    "man",
    "oko",
    "ide",
    "ard",
    "esh",
    "ula",
    "ongo",
    "ait",
    "ber",
    "anu",
)
_STREET_KINDS = ("Street", "Road", "Avenue", "Lane", "Way", "Close", "Market Street")


def _word(rng: random.Random, syllables: int, endings: tuple[str, ...]) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(endings)).capitalize()


def _pool(rng: random.Random, size: int, endings: tuple[str, ...], max_syll: int) -> list[str]:
    seen: dict[str, None] = {}
    while len(seen) < size:
        seen.setdefault(_word(rng, rng.randint(1, max_syll), endings), None)
    return list(seen)


def _zipf_cum(size: int, exponent: float) -> list[float]:
    return list(accumulate(1.0 / (rank + 1) ** exponent for rank in range(size)))


class WeightedPool:
    """A list of values with cumulative weights; ``pick`` is a bisect, cheaper than choices()."""

    __slots__ = ("_cum", "_total", "values")

    def __init__(self, values: list[str], cum_weights: list[float]) -> None:
        self.values = values
        self._cum = cum_weights
        self._total = cum_weights[-1]

    def pick(self, rng: random.Random) -> str:
        return self.values[bisect(self._cum, rng.random() * self._total)]


def _build() -> tuple[WeightedPool, WeightedPool, WeightedPool, list[str]]:
    rng = random.Random("country-culture-v1")
    male = _pool(rng, 400, _MALE_ENDINGS, 2)
    female = _pool(rng, 400, _FEMALE_ENDINGS, 2)
    family = _pool(rng, 2000, _FAMILY_ENDINGS, 3)
    streets = [
        f"{_word(rng, rng.randint(1, 2), _FAMILY_ENDINGS)} {rng.choice(_STREET_KINDS)}"
        for _ in range(120)
    ]
    return (
        WeightedPool(male, _zipf_cum(len(male), 1.0)),
        WeightedPool(female, _zipf_cum(len(female), 1.0)),
        WeightedPool(family, _zipf_cum(len(family), 0.9)),
        streets,
    )


MALE_GIVEN, FEMALE_GIVEN, FAMILY, STREETS = _build()


def given_name(rng: random.Random, sex: str) -> str:
    return (MALE_GIVEN if sex == "male" else FEMALE_GIVEN).pick(rng)


def family_name(rng: random.Random) -> str:
    return FAMILY.pick(rng)


def place_name(rng: random.Random) -> str:
    """A name for an admin area (drawn from the seed's own stream, so areas vary by seed)."""
    return _word(rng, rng.randint(2, 3), ("a", "o", "ia", "en", "ar", "ville", "dale", "ton"))


def company_name(rng: random.Random) -> str:
    kind = rng.choice(
        (
            "Trading",
            "Farms",
            "Holdings",
            "Logistics",
            "Builders",
            "Textiles",
            "Foods",
            "Clinic",
            "Mining",
            "Transport",
            "Hotel",
            "Bank",
        )
    )
    return f"{FAMILY.pick(rng)} {kind} Ltd"
