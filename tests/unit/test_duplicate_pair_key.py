"""A duplicate pair has one review key whichever way round it is named, distinct per pair, and
it fits the review's ``message_id`` column (64 characters)."""

from __future__ import annotations

import uuid

from registry_core.models import MatchReview
from registry_core.resolution import duplicate_pair_key


def test_one_key_per_unordered_pair_that_fits_the_column() -> None:
    a, b, c = (uuid.uuid4() for _ in range(3))
    assert duplicate_pair_key(a, b) == duplicate_pair_key(b, a) == duplicate_pair_key(str(b), a)
    assert len({duplicate_pair_key(a, b), duplicate_pair_key(a, c), duplicate_pair_key(b, c)}) == 3
    width = MatchReview.__table__.c.message_id.type.length
    assert len(duplicate_pair_key(a, b)) <= width
    assert str(a) not in duplicate_pair_key(a, b)  # a digest, not the ids
