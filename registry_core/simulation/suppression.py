"""Small-cell suppression of aggregate counts shown to people who must not single anyone out.

A cell (an area and a segment) with any count below ``min_cell`` but above none has all its
counts blanked (``None``) and is flagged ``suppressed``, so a count of two in a small village
cannot point at two families, nor be recovered as the difference of the cell's other
counts. Totals are left as they are (they are large by construction); with ``min_cell``
0 or 1 nothing is suppressed.

Kept as one function over plain dicts so the coverage reports (which have a ``min_cell``
setting of their own) and the simulations can share one rule: the integrator may move it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def suppress_small_cells(
    cells: Iterable[Mapping[str, Any]], min_cell: int, count_fields: Sequence[str]
) -> list[dict[str, Any]]:
    """Copies of ``cells``; a cell with a count in ``count_fields`` below ``min_cell`` (and
    above zero) has all of them replaced by None and gets ``"suppressed": True``."""
    result = []
    for cell in cells:
        copy = dict(cell)
        small = min_cell > 1 and any(
            isinstance(copy.get(name), int | float) and 0 < copy[name] < min_cell
            for name in count_fields
        )
        if small:
            for name in count_fields:
                copy[name] = None
            copy["suppressed"] = True
        result.append(copy)
    return result
