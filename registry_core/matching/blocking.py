"""Blocking: which pairs are worth comparing at all.

Comparing every pair is n^2 (5 * 10^9 pairs for 100,000 people). Instead each record gets a few
keys, each built to survive a different kind of noise, and only records sharing a key are
compared. A true pair is found if *any* key survives, so the passes cover for each other:

``fy:`` family-name Soundex + birth year   survives given-name typos, address changes
``d:``  birth date, day and month sorted   survives any name change and DD/MM transposition
``n:``  both name Soundexes, sorted        survives swapped names and a wrong or missing date
``i:``  national identifier               survives everything else being wrong
``ih:`` identifier's first / last part     survives one typo in the identifier as well
``pf:`` postcode + family-name Soundex     survives a wrong or missing birth date
``pg:`` postcode + given-name Soundex      survives a family-name change and a wrong date

Keys are plain strings with a prefix, so the registry can store them in one indexed column and
fetch a candidate block for the ingest path with ``WHERE key IN (...)``.

Blocks larger than a cap are dropped (not truncated: truncating would make the result depend on
input order). A huge block means the key is not selective there (a very common name); the
other passes still reach those records. The ingest path should apply the same cap when it
fetches a block from the registry (skip a key that returns more than ``max_block_size``
records), or a common birth date in a large registry returns thousands of candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from registry_core.matching.normalise import PersonRecord


def blocking_keys(record: PersonRecord) -> list[str]:
    """The blocking keys of one record (no duplicates, stable order)."""
    keys: list[str] = []
    birth = record.birth
    year = birth[:4] if birth else ""
    if record.family_sx and year:
        keys.append(f"fy:{record.family_sx}{year}")
    if birth:
        month, day = birth[4:6], birth[6:8]
        keys.append(f"d:{year}{min(month, day)}{max(month, day)}")
    if record.given_sx and record.family_sx:
        first, second = sorted((record.given_sx, record.family_sx))
        keys.append(f"n:{first}{second}")
    if record.national_id:
        nid = record.national_id
        keys.append(f"i:{nid}")
        if len(nid) >= 6:  # shorter parts would not be selective enough
            # Two parts of at least 4 characters (overlapping for short identifiers): a typo
            # outside the overlap leaves one intact.
            part = max(4, (len(nid) + 1) // 2)
            keys.append(f"ih:{len(nid)}a{nid[:part]}")
            keys.append(f"ih:{len(nid)}b{nid[-part:]}")
    if record.postcode and record.family_sx:
        keys.append(f"pf:{record.postcode}{record.family_sx}")
    if record.postcode and record.given_sx:
        keys.append(f"pg:{record.postcode}{record.given_sx}")
    return keys


def candidate_pairs(
    records: Sequence[PersonRecord], *, max_block_size: int = 50
) -> Iterable[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of records sharing at least one blocking key.

    Each pair is produced once however many keys it shares. Memory is one dict entry per key
    plus one int per distinct pair.
    """
    blocks: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        for key in blocking_keys(record):
            blocks.setdefault(key, []).append(index)
    n = len(records)
    seen: set[int] = set()
    for members in blocks.values():
        size = len(members)
        if size < 2 or size > max_block_size:
            continue
        for x in range(size - 1):
            i = members[x]
            base = i * n
            for j in members[x + 1 :]:
                seen.add(base + j)
    for code in sorted(seen):
        yield divmod(code, n)
