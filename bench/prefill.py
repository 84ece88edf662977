"""Benchmark: prefill by national ID through the hub's API, next to one bare SOAP call.

Why this baseline: the prefill asks four partners, maps and merges their answers, and goes
through the hub's HTTP API with authentication. The fastest thing that could possibly answer
"who is this?" is a single ``GetPerson`` call with zeep straight to the national ID authority;
measured in the same run, on the same machine, at the same concurrency, it shows what the
fan-out, mapping, merging and HTTP cost on top.

    python -m bench.prefill [--n 200] [--concurrency 4] [--people 1000] [--deadline 2]

The sandbox is started in-process (launcher, ports 0); the hub API is served by werkzeug on a
loopback port with the connectors of the sandbox configuration. The last line is
``prefill p50_ms=... p95_ms=... p99_ms=... baseline_getperson_p50_ms=... partial_share=...``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import WSGIRequestHandler, make_server
from zeep import Client
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from connectors.base import Connector, ConnectorContext
from connectors.base.testing import CollectingPublisher, SettingsOnlyConnector
from connectors.national_id import NationalIdConnector
from connectors.national_id.soap import zeep_settings
from hub.api import create_app
from hub.api.prefill import CONNECTORS_KEY
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from sandbox_mocks.launcher import MOCK_NAMES, SandboxConfig, start_sandbox

SOURCES = ("national_id", "civil_registry", "tax", "gis")
WARMUP = 5


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Thousands of access lines would drown the figures."""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def run_concurrently(
    work: Callable[[int], Any], n: int, concurrency: int
) -> tuple[list[float], list[Any]]:
    """Latency (ms) and result of ``work(i)`` for i in 0..n-1 on ``concurrency`` threads."""
    latencies: list[float] = [0.0] * n
    results: list[Any] = [None] * n

    def one(i: int) -> None:
        started = time.perf_counter()
        results[i] = work(i)
        latencies[i] = (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(n)))
    return latencies, results


def describe(name: str, latencies: list[float]) -> str:
    return (
        f"{name:<22} n={len(latencies):<5} p50={percentile(latencies, 0.5):7.1f} ms  "
        f"p95={percentile(latencies, 0.95):7.1f} ms  p99={percentile(latencies, 0.99):7.1f} ms"
        f"  mean={statistics.fmean(latencies):7.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="prefill requests (default 200)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--people", type=int, default=1000, help="sandbox population")
    parser.add_argument("--deadline", type=float, default=2.0, help="prefill deadline, s")
    args = parser.parse_args(argv)

    work_dir = Path(tempfile.mkdtemp(prefix="srhub-bench-prefill-"))
    config = SandboxConfig(
        people=args.people,
        ports=dict.fromkeys(MOCK_NAMES, 0),
        work_dir=work_dir,
        only=SOURCES,
        tax_interval_seconds=0,
        tax_drop_on_start=False,
    )
    with start_sandbox(config) as sandbox:
        requests.post(
            sandbox.url("civil_registry") + "/_admin/clock/advance", json={"days": 365}, timeout=60
        )
        store = sandbox.app("national_id").extensions["national_id"].store
        ids = sorted(r.uin for r in store.records())
        publisher = CollectingPublisher()
        connectors: dict[str, Connector] = {}
        for name, section in sandbox.connectors().items():
            context = ConnectorContext(name, publisher)
            partner = {
                **section,
                "resilience": {
                    "timeout_seconds": 2,
                    "max_attempts": 2,
                    "initial_backoff_seconds": 0.05,
                },
            }
            connectors[name] = (
                NationalIdConnector(partner, context)
                if name == "national_id"
                else SettingsOnlyConnector(partner, context)
            )

        settings = load_settings(
            env={}, database_url=f"sqlite:///{work_dir / 'hub.db'}", data_dir=work_dir
        )
        app = create_app(settings)
        app.extensions[CONNECTORS_KEY] = connectors
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_port}/api/v1/prefill"
        token = issue_token(settings, subject="bench", roles=["registry_staff"])
        local = threading.local()

        def session() -> requests.Session:
            if not hasattr(local, "session"):
                local.session = requests.Session()
                local.session.headers["Authorization"] = f"Bearer {token}"
            return local.session

        def prefill(i: int) -> dict[str, Any]:
            answer = session().post(
                url,
                json={"national_id": ids[i % len(ids)], "deadline_seconds": args.deadline},
                timeout=30,
            )
            answer.raise_for_status()
            return answer.json()

        nid = sandbox.connectors()["national_id"]

        def soap_client() -> Any:
            if not hasattr(local, "zeep"):
                local.zeep = Client(
                    nid["wsdl_url"],
                    transport=Transport(timeout=10, operation_timeout=10),
                    wsse=UsernameToken(nid["username"], nid["password"]),
                )
            return local.zeep

        def get_person(i: int) -> Any:
            return soap_client().service.GetPerson(
                transactionID=f"bench-{i}",
                individualId=ids[i % len(ids)],
                individualIdType="UIN",
                consentObtained=True,
                requestTime=datetime.now(UTC).replace(microsecond=0),
            )

        try:
            run_concurrently(prefill, WARMUP, 1)
            run_concurrently(get_person, WARMUP, args.concurrency)
            baseline, _ = run_concurrently(get_person, args.n, args.concurrency)
            latencies, answers = run_concurrently(prefill, args.n, args.concurrency)
        finally:
            server.shutdown()
        statuses: dict[str, dict[str, int]] = {s: {} for s in SOURCES}
        for answer in answers:
            for source, status in answer["sources"].items():
                statuses[source][status["status"]] = statuses[source].get(status["status"], 0) + 1
        partial_share = sum(1 for a in answers if a["partial"]) / len(answers)
        print(
            f"sandbox people={args.people} identities={len(ids)} "
            f"concurrency={args.concurrency} deadline={args.deadline:g}s"
        )
        print(describe("baseline GetPerson", baseline))
        print(describe("prefill (4 sources)", latencies))
        for source, counts in statuses.items():
            print(f"  {source:<15} " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        print(
            f"  raw records published: {len(publisher.records())}; "
            f"zeep settings strict={zeep_settings().strict}"
        )
        print(
            f"prefill p50_ms={percentile(latencies, 0.5):.1f} "
            f"p95_ms={percentile(latencies, 0.95):.1f} p99_ms={percentile(latencies, 0.99):.1f} "
            f"baseline_getperson_p50_ms={percentile(baseline, 0.5):.1f} "
            f"partial_share={partial_share:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
