"""``python -m sandbox_mocks.national_id [--port 8101] [--seed 42] [--people 2000]``"""

from __future__ import annotations

import argparse
import logging

from sandbox_mocks.common.server import serve_forever
from sandbox_mocks.national_id import NationalIdConfig, create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="Sandbox national ID authority (SOAP)")
    defaults = NationalIdConfig()
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--people", type=int, default=defaults.people)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    config = NationalIdConfig(seed=args.seed, people=args.people, host=args.host, port=args.port)
    serve_forever(create_app(config), args.host, args.port)


if __name__ == "__main__":
    main()
