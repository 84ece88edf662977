"""A small table of common English given-name diminutives.

Why a table and not string similarity: "bob" and "robert" share no letters in place, so no edit
distance links them, yet they are the same name on two forms. The list is short on purpose:
every entry must be a diminutive in wide use, because a wrong entry makes two different people
look alike. Diminutives shared by several names (``sam``: samuel, samantha) map to all of them.
Registries serving other languages add their own table through :func:`nickname_groups`.
"""

from __future__ import annotations

_TABLE: dict[str, tuple[str, ...]] = {
    "abby": ("abigail",),
    "al": ("albert", "alan", "alfred", "alexander"),
    "alex": ("alexander", "alexandra", "alexis"),
    "andy": ("andrew",),
    "ben": ("benjamin",),
    "beth": ("elizabeth", "bethany"),
    "bill": ("william",),
    "billy": ("william",),
    "bob": ("robert",),
    "bobby": ("robert",),
    "cathy": ("catherine", "cathleen"),
    "charlie": ("charles", "charlotte"),
    "chris": ("christopher", "christine", "christina"),
    "dan": ("daniel",),
    "danny": ("daniel",),
    "dave": ("david",),
    "davy": ("david",),
    "dick": ("richard",),
    "ed": ("edward", "edmund", "edwin"),
    "eddie": ("edward",),
    "fred": ("frederick", "alfred"),
    "greg": ("gregory",),
    "harry": ("henry", "harold"),
    "jack": ("john",),
    "jake": ("jacob",),
    "jen": ("jennifer",),
    "jenny": ("jennifer",),
    "jim": ("james",),
    "jimmy": ("james",),
    "joe": ("joseph",),
    "johnny": ("john",),
    "jon": ("jonathan", "john"),
    "kate": ("katherine", "catherine", "kathryn"),
    "katie": ("katherine", "catherine", "kathryn"),
    "ken": ("kenneth",),
    "larry": ("lawrence",),
    "liz": ("elizabeth",),
    "lizzie": ("elizabeth",),
    "maggie": ("margaret",),
    "matt": ("matthew",),
    "meg": ("margaret",),
    "mick": ("michael",),
    "mike": ("michael",),
    "nick": ("nicholas",),
    "pat": ("patrick", "patricia"),
    "peggy": ("margaret",),
    "pete": ("peter",),
    "phil": ("philip",),
    "rob": ("robert",),
    "ron": ("ronald",),
    "sam": ("samuel", "samantha"),
    "sandy": ("alexander", "alexandra", "sandra"),
    "steve": ("stephen", "steven"),
    "sue": ("susan",),
    "ted": ("edward", "theodore"),
    "tom": ("thomas",),
    "tommy": ("thomas",),
    "tony": ("anthony",),
    "will": ("william",),
}


def nickname_groups(table: dict[str, tuple[str, ...]] | None = None) -> dict[str, frozenset[str]]:
    """Map every name in the table (diminutive or formal) to the set of formal names it stands for.

    A formal name stands for itself; a diminutive stands for each formal name it shortens.
    """
    groups: dict[str, set[str]] = {}
    for short, formals in (table or _TABLE).items():
        groups.setdefault(short, set()).update(formals)
        for formal in formals:
            groups.setdefault(formal, set()).add(formal)
    return {name: frozenset(formals) for name, formals in groups.items()}


#: Name -> formal names it stands for, for the built-in table.
NICKNAME_GROUPS = nickname_groups()
_GROUPS = NICKNAME_GROUPS


def same_by_nickname(a: str, b: str) -> bool:
    """True when two different given names are a diminutive of each other or of one formal name."""
    if a == b:
        return False
    ga, gb = _GROUPS.get(a), _GROUPS.get(b)
    return ga is not None and gb is not None and not ga.isdisjoint(gb)
