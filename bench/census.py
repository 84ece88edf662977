"""A held-out, census-style test set: one population seen by several registries, each noisy.

    records, truth = census_style(people=4000, seed=2026)

Why this set: FEBRL's duplicates are one original and its corrupted copies. A social registry
meets something harder: the same households listed by a census, a health register and a school
or tax roll, each with its own habits. Households share a family name, an address and often
birth years close together, so strangers inside one household look alike; twins share almost
everything. Each source has its own noise: typos, nicknames ("bob" for "robert"), given and
family name swapped, day and month transposed, a missing field, an abbreviated or incomplete
address, a move to another address, a married name, an identifier known to some sources only
and sometimes mistyped.

It is generated with a fixed seed and was never used to choose a threshold or a comparison
level: ``bench.dedup`` reports it as a check only. Ids are ``rec-<person>-<source>`` so
:func:`bench.dedup.truth_from_ids` reads the ground truth from them.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from registry_core.matching import PersonRecord, make_person

Pairs = set[tuple[str, str]]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_MALE = _words(
    "james john robert michael william david richard joseph thomas charles christopher daniel "
    "matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy "
    "ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin "
    "scott brandon benjamin samuel gregory alexander frank patrick raymond jack dennis jerry "
    "tyler aaron jose adam nathan henry douglas zachary peter kyle noah ethan jeremy walter "
    "christian keith roger terry austin sean gerald carl harold dylan arthur lawrence jordan "
    "jesse bryan billy bruce gabriel joe logan alan juan albert willie elijah wayne randy "
    "vincent mason roy ralph bobby russell bradley philip eugene"
)
_FEMALE = _words(
    "mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty "
    "sandra margaret ashley kimberly emily donna michelle carol amanda melissa deborah "
    "stephanie dorothy rebecca sharon laura cynthia amy kathleen angela shirley brenda emma "
    "anna pamela nicole samantha katherine christine helen debra rachel carolyn janet maria "
    "catherine heather diane olivia julie joyce victoria ruth virginia lauren kelly christina "
    "joan evelyn judith andrea hannah megan cheryl jacqueline martha madison teresa gloria sara "
    "janice ann kathryn abigail sophia frances jean alice judy isabella julia grace amber "
    "denise danielle marilyn beverly charlotte natalie theresa diana brittany doris kayla "
    "alexis lori marie"
)
_FAMILY = _words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez "
    "gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white "
    "harris sanchez clark ramirez lewis robinson walker young allen king wright scott torres "
    "nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts "
    "gomez phillips evans turner diaz parker cruz edwards collins reyes stewart morris morales "
    "murphy cook rogers gutierrez ortiz morgan cooper peterson bailey reed kelly howard ramos "
    "kim cox ward richardson watson brooks chavez wood james bennett gray mendoza ruiz hughes "
    "price alvarez castillo sanders patel myers long ross foster jimenez powell jenkins perry "
    "russell sullivan bell coleman butler henderson barnes gonzales fisher vasquez simmons "
    "romero jordan patterson alexander hamilton graham reynolds griffin wallace moreno west "
    "cole hayes bryant herrera gibson ellis tran medina aguilar stevens murray ford castro "
    "marshall owens harrison fernandez mcdonald woods washington kennedy wells vargas henry "
    "chen freeman webb tucker guzman burns crawford olson simpson porter hunter gordon mendez "
    "silva shaw snyder mason dixon munoz hunt hicks holmes palmer wagner black robertson boyd "
    "rose stone salazar fox warren mills meyer rice schmidt garza daniels ferguson nichols "
    "stephens soto weaver ryan gardner payne grant dunn kelley spencer hawkins arnold pierce "
    "vazquez hansen peters santos hart bradley knight elliott cunningham duncan armstrong "
    "hudson carroll lane riley andrews alvarado ray delgado berry perkins hoffman johnston "
    "matthews pena richards contreras willis carpenter lawrence sandoval okafor mwangi odhiambo "
    "kamau achieng banda phiri mensah boateng diallo traore kowalski novak horvat popescu "
    "ivanova petrov haddad nasser rahman hossain"
)
_NICKNAMES = {
    "robert": ("bob", "rob", "bobby"),
    "william": ("bill", "will", "billy"),
    "james": ("jim", "jimmy"),
    "michael": ("mike",),
    "thomas": ("tom", "tommy"),
    "elizabeth": ("liz", "beth", "betty"),
    "margaret": ("peggy", "maggie"),
    "katherine": ("kate", "kathy"),
    "catherine": ("cathy", "kate"),
    "richard": ("dick", "rich"),
    "joseph": ("joe",),
    "daniel": ("dan", "danny"),
    "christopher": ("chris",),
    "jennifer": ("jen", "jenny"),
    "patricia": ("pat", "patty"),
    "edward": ("ed", "ted"),
    "anthony": ("tony",),
    "susan": ("sue",),
    "samuel": ("sam",),
    "alexander": ("alex",),
    "andrew": ("andy",),
    "benjamin": ("ben",),
    "nicholas": ("nick",),
    "rebecca": ("becky",),
    "victoria": ("vicky",),
    "stephen": ("steve",),
    "david": ("dave",),
}
_STREETS = _words(
    "church mill station park high victoria queen king green school north south west east "
    "chapel bridge manor grove orchard meadow forest river lake hill valley cedar oak elm maple "
    "pine willow ash birch jubilee albert windsor clarence george york"
)
_STREET_TYPES = {"street": "st", "road": "rd", "avenue": "ave", "lane": "ln", "drive": "dr"}
_PLACES = _words(
    "ashford bramley carlton dunmore elmstead fairview glenwood hartley ivybridge kingsley "
    "langford millbrook newbury oakridge pembrook queensbury riverside stanton thornbury upton "
    "valemount westbury yarmouth zeals abbotsford bellview crestwood dalton eastleigh"
)

#: Per source: coverage (share of people listed), identifier share, and noise rates.
_SOURCES: dict[str, dict[str, float]] = {
    "census": {"coverage": 0.92, "ident": 0.0, "typo": 0.06, "nick": 0.05, "swap": 0.02,
               "dm": 0.03, "missing": 0.04, "addr": 0.3, "moved": 0.05},
    "health": {"coverage": 0.75, "ident": 0.85, "typo": 0.08, "nick": 0.15, "swap": 0.04,
               "dm": 0.05, "missing": 0.08, "addr": 0.4, "moved": 0.15},
    "school": {"coverage": 0.45, "ident": 0.6, "typo": 0.1, "nick": 0.2, "swap": 0.03,
               "dm": 0.08, "missing": 0.1, "addr": 0.5, "moved": 0.2},
}  # fmt: skip


def _zipf_pick(rng: random.Random, pool: tuple[str, ...]) -> str:
    weights = [1 / (rank + 3) for rank in range(len(pool))]
    return rng.choices(pool, weights=weights)[0]


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    op = rng.randrange(4)
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    if op == 0:
        return text[:i] + letter + text[i + 1 :]
    if op == 1:
        return text[:i] + text[i + 1 :]
    if op == 2:
        return text[:i] + letter + text[i:]
    return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]


def _population(rng: random.Random, people: int) -> list[dict[str, Any]]:
    """People in households: shared family name and address, plausible ages, some twins."""
    places = [(p, str(rng.randrange(1000, 9999))) for p in _PLACES]
    persons: list[dict[str, Any]] = []
    while len(persons) < people:
        family = _zipf_pick(rng, _FAMILY)
        locality, postcode = rng.choice(places)
        street_type = rng.choice(list(_STREET_TYPES))
        home = {
            "number": str(rng.randrange(1, 250)),
            "street": f"{rng.choice(_STREETS)} {street_type}",
            "locality": locality,
            "postcode": postcode,
        }
        parent_year = rng.randrange(1945, 2000)
        members = []
        for sex in rng.sample(("m", "f"), k=rng.choice((1, 2, 2, 2))):
            members.append((sex, parent_year + rng.randrange(-4, 5)))
        for _ in range(rng.choice((0, 1, 2, 2, 3, 4))):
            child_year = min(parent_year + rng.randrange(18, 42), 2024)
            members.append((rng.choice("mf"), child_year))
            if rng.random() < 0.03:  # twins: same birth date, different given name
                members.append((rng.choice("mf"), -child_year))
        last_birth = ""
        for sex, year in members:
            pool = _MALE if sex == "m" else _FEMALE
            if year < 0:
                birth = last_birth
            else:
                birth = f"{year}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
            last_birth = birth
            persons.append(
                {
                    "given_name": _zipf_pick(rng, pool),
                    "family_name": family,
                    "birth_date": birth,
                    "sex": sex,
                    "national_id": f"{rng.randrange(10**8, 10**9)}",
                    "home": home,
                }
            )
    return persons[:people]


def _address(rng: random.Random, home: dict[str, str], variation: float) -> str:
    number, street = home["number"], home["street"]
    if rng.random() < variation:
        kind = rng.randrange(4)
        name, street_type = street.rsplit(" ", 1)
        if kind == 0:
            street = f"{name} {_STREET_TYPES[street_type]}"
        elif kind == 1:
            number = ""
        elif kind == 2:
            number = f"flat {rng.randrange(1, 9)} {number}"
        else:
            street = _typo(rng, street)
    return f"{number} {street}".strip()


def _listing(rng: random.Random, person: dict[str, Any], rates: dict[str, float]) -> dict[str, str]:
    """One source's record of a person, with that source's noise."""
    given, family, birth = person["given_name"], person["family_name"], person["birth_date"]
    home = person["home"]
    if rng.random() < rates["moved"]:
        home = {**home, "number": str(rng.randrange(1, 250)),
                "street": f"{rng.choice(_STREETS)} {rng.choice(list(_STREET_TYPES))}"}  # fmt: skip
        if rng.random() < 0.5:
            home["locality"], home["postcode"] = rng.choice(
                [(p, str(rng.randrange(1000, 9999))) for p in _PLACES]
            )
    if rng.random() < rates["nick"] and given in _NICKNAMES:
        given = rng.choice(_NICKNAMES[given])
    if rng.random() < rates["typo"]:
        given = _typo(rng, given)
    if rng.random() < rates["typo"]:
        family = _typo(rng, family)
    if person["sex"] == "f" and rng.random() < 0.04:
        family = _zipf_pick(rng, _FAMILY)  # married or maiden name
    if rng.random() < rates["swap"]:
        given, family = family, given
    if rng.random() < rates["dm"] and int(birth[6:8]) <= 12:
        birth = birth[:4] + birth[6:8] + birth[4:6]
    elif rng.random() < rates["typo"] / 2:  # one digit mistyped
        i = rng.randrange(2, 8)
        birth = birth[:i] + str(rng.randrange(10)) + birth[i + 1 :]
    row = {
        "given_name": given,
        "family_name": family,
        "birth_date": birth,
        "sex": person["sex"] if rng.random() > rates["missing"] else "",
        "national_id": "",
        "address": _address(rng, home, rates["addr"]),
        "locality": home["locality"],
        "postcode": home["postcode"],
    }
    if rng.random() < rates["ident"]:
        ident = person["national_id"]
        row["national_id"] = _typo(rng, ident) if rng.random() < rates["typo"] else ident
    for column in ("given_name", "birth_date", "address", "postcode"):
        if rng.random() < rates["missing"] / 2:
            row[column] = ""
    return row


def census_style(people: int = 4000, seed: int = 2026) -> tuple[list[PersonRecord], Pairs]:
    """Records of ``people`` persons as listed by three sources, and the true pairs."""
    rng = random.Random(seed)
    population = _population(rng, people)
    rows: list[tuple[str, dict[str, str]]] = []
    for index, person in enumerate(population):
        for source, rates in _SOURCES.items():
            if rng.random() < rates["coverage"]:
                rows.append((f"rec-{index}-{source}", _listing(rng, person, rates)))
    rng.shuffle(rows)
    records = [make_person(rid, **row, lenient_dates=True) for rid, row in rows]
    groups: dict[str, list[str]] = {}
    for rid, _ in rows:
        groups.setdefault(rid.split("-")[1], []).append(rid)
    truth = {p for ids in groups.values() for p in itertools.combinations(sorted(ids), 2)}
    return records, truth
