"""``python -m sandbox_mocks.civil_registry [--port 8102] [--faults faults.toml]``."""

from __future__ import annotations

import argparse
import logging

from sandbox_mocks.civil_registry.app import create_app
from sandbox_mocks.civil_registry.config import DEFAULT_PORT, CivilRegistryConfig
from sandbox_mocks.common.faults import FaultConfig
from sandbox_mocks.common.server import serve_forever


def main() -> None:
    parser = argparse.ArgumentParser(description="Civil registry (CRVS) sandbox mock")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--faults", help="fault config file (.toml or .json)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--messy-rate", type=float, default=0.0)
    parser.add_argument("--noise-rate", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=0.0, help="simulated days per second")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    config = CivilRegistryConfig(
        population_seed=args.seed,
        population_people=args.people,
        messy_rate=args.messy_rate,
        noise_rate=args.noise_rate,
        rate_days_per_second=args.rate,
        faults=FaultConfig.from_file(args.faults) if args.faults else FaultConfig(),
    )
    serve_forever(create_app(config), args.host, args.port)


if __name__ == "__main__":
    main()
