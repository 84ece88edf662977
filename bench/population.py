"""Benchmark: stream the whole synthetic population and its vital events.

Why a baseline: "N seconds" means little alone. The baseline is a bare loop drawing the same
number of random names and birth dates with the standard library and nothing of ours, measured
in the same run on the same machine, so the figure reads as "k times a bare loop".

    python -m bench.population --people 1000000

The last line is ``population people=... seconds=... peak_rss_mb=...`` (plus extra fields).
Peak RSS is the process high-water mark from ``resource.getrusage`` (Linux: KiB).
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from datetime import date

from sandbox_mocks.population import SyntheticCountry
from sandbox_mocks.population.names import FAMILY, FEMALE_GIVEN, MALE_GIVEN


def baseline(people: int, seed: int) -> float:
    """Seconds for a bare loop: one random name pair and birth date per person, kept nowhere."""
    rng = random.Random(seed)
    male, female, family = MALE_GIVEN.values, FEMALE_GIVEN.values, FAMILY.values
    started = time.perf_counter()
    checksum = 0
    for _ in range(people):
        given = rng.choice(male) if rng.random() < 0.5 else rng.choice(female)
        name = f"{given} {rng.choice(family)}"
        born = date.fromordinal(700_000 + rng.randrange(36_500))
        checksum += len(name) + born.day
    elapsed = time.perf_counter() - started
    if checksum < 0:  # keep the loop's work observable
        print(checksum)
    return elapsed


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--days", type=int, default=365, help="length of the event period")
    args = parser.parse_args(argv)

    country = SyntheticCountry(args.seed)
    started = time.perf_counter()
    households = people = no_nid = 0
    for household in country.iter_households(args.people):
        households += 1
        for person in household.members:
            people += 1
            no_nid += person.national_id is None
    population_s = time.perf_counter() - started

    started_events = time.perf_counter()
    births = deaths = 0
    for event in country.iter_vital_events(args.people, days=args.days):
        if event.kind == "birth":
            births += 1
        else:
            deaths += 1
    events_s = time.perf_counter() - started_events
    total_s = population_s + events_s

    base_s = baseline(args.people, args.seed)
    print(
        f"households={households} mean_size={people / max(households, 1):.2f} "
        f"no_national_id={no_nid / max(people, 1):.1%} births={births} deaths={deaths} "
        f"days={args.days}"
    )
    print(
        f"population_stream_s={population_s:.2f} events_stream_s={events_s:.2f} "
        f"baseline_bare_loop_s={base_s:.2f} ratio={total_s / max(base_s, 1e-9):.1f}x"
    )
    print(
        f"population people={people} seconds={total_s:.2f} peak_rss_mb={peak_rss_mb():.1f} "
        f"events={births + deaths} baseline_seconds={base_s:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
