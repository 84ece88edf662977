"""Dump a synthetic world for a look or for another tool, as JSON lines or GeoJSON.

python -m sandbox_mocks.population --people 50            # households, one JSON per line
python -m sandbox_mocks.population --people 50 --events   # vital events of one year
python -m sandbox_mocks.population --areas                # admin areas as GeoJSON
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import date
from typing import Any

from sandbox_mocks.population import SyntheticCountry


def _default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Dump the synthetic population")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--people", type=int, default=100)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--events", action="store_true", help="vital events instead")
    group.add_argument("--areas", action="store_true", help="admin areas as GeoJSON")
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args(argv)
    country = SyntheticCountry(args.seed)
    out = sys.stdout
    if args.areas:
        features = [
            {
                "type": "Feature",
                "id": a.code,
                "geometry": {"type": "Polygon", "coordinates": a.polygon},
                "properties": {k: v for k, v in asdict(a).items() if k != "polygon"},
            }
            for a in country.areas
        ]
        json.dump({"type": "FeatureCollection", "features": features}, out)
        out.write("\n")
        return 0
    rows = (
        country.iter_vital_events(args.people, days=args.days)
        if args.events
        else country.iter_households(args.people)
    )
    for row in rows:
        out.write(json.dumps(asdict(row), default=_default) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
