"""American Soundex, written out so blocking needs no extra package.

Why Soundex: blocking only needs a coarse code that survives the commonest spelling slips
(doubled letters, vowel changes, c/k, m/n at the end). A finer code (Metaphone) would split
more true pairs into different blocks, and the comparison step does the fine work anyway.
"""

from __future__ import annotations

_CODES = {
    **dict.fromkeys("bfpv", "1"),
    **dict.fromkeys("cgjkqsxz", "2"),
    **dict.fromkeys("dt", "3"),
    "l": "4",
    **dict.fromkeys("mn", "5"),
    "r": "6",
}


def soundex(name: str) -> str:
    """Four-character Soundex of an ASCII lower-case name (``""`` for a name with no letters).

    Rules: keep the first letter; code the rest; a code equal to the previous one is dropped,
    also across ``h`` and ``w`` but not across vowels; pad with zeros to four characters.
    """
    letters = [ch for ch in name if "a" <= ch <= "z"]
    if not letters:
        return ""
    first = letters[0]
    out = [first]
    previous = _CODES.get(first, "")
    for ch in letters[1:]:
        code = _CODES.get(ch, "")
        if code:
            if code != previous:
                out.append(code)
                if len(out) == 4:
                    break
            previous = code
        elif ch not in "hw":
            previous = ""  # a vowel separates two equal codes
    return "".join(out).ljust(4, "0")
