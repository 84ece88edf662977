"""``python -m sandbox_mocks.gis [--port 8104] [--seed 42]``"""

from __future__ import annotations

import argparse
import logging

from sandbox_mocks.common.server import serve_forever
from sandbox_mocks.gis import GisConfig, create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="Sandbox GIS service (REST/GeoJSON)")
    defaults = GisConfig()
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    config = GisConfig(seed=args.seed, host=args.host, port=args.port)
    serve_forever(create_app(config), args.host, args.port)


if __name__ == "__main__":
    main()
