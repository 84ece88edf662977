"""The tax authority's small status API around its drop folder (default port 8103).

The data itself travels as files; this API is the control plane a tester or the sandbox
launcher uses: see where the folder is, list what was dropped (with the faults each drop was
given, which the files themselves never admit), drop now, and set the fault mix. One data
endpoint answers on demand: ``POST /taxpayers/lookup`` gives one person's taxpayer records and
returns by national ID (what a real authority's look-up service offers a social registry).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request

from sandbox_mocks.common.faults import FaultConfig, add_shutdown_hook, install_faults
from sandbox_mocks.population.model import Household
from sandbox_mocks.tax import formats
from sandbox_mocks.tax.drops import DropRequest, TaxDropFolder, UnknownPeriodError
from sandbox_mocks.tax.injection import InjectionMix
from sandbox_mocks.tax.records import Row, rows_by_period, taxpayers

EXTENSION_KEY = "tax_drop_folder"


@dataclass
class TaxAuthorityConfig:
    """Everything the tax mock needs; ``households`` may be any list of population records."""

    drop_folder: Path
    households: Sequence[Household] = ()
    seed: int = 0
    formats: tuple[str, ...] = ("csv", "xml")
    interval_seconds: float = 0.0  # 0: drop only when asked (tests); the launcher sets a period
    rows_per_file: int = 0  # 0: a drop holds the whole period
    injection: InjectionMix = field(default_factory=InjectionMix)
    currency: str = "XTS"  # ISO 4217 code reserved for testing
    noise_rate: float = 0.0  # share of taxpayers whose name/national ID has data-entry noise
    drop_on_start: bool = False
    faults: FaultConfig | None = None  # HTTP-level faults of the status API itself


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


def _json_body(allow_empty: bool) -> Any:
    if not request.get_data():
        if allow_empty:
            return {}
        raise ValueError("(body): a JSON object is required")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValueError("(body): must be a JSON object (Content-Type: application/json)")
    return body


def create_app(config: TaxAuthorityConfig) -> Flask:
    """Build the status API and its drop folder; periodic drops start here when configured."""
    periods = rows_by_period(
        config.households,
        currency=config.currency,
        seed=config.seed,
        noise_rate=config.noise_rate,
    )
    folder = TaxDropFolder(
        config.drop_folder,
        periods,
        seed=config.seed,
        formats_cycle=config.formats,
        rows_per_file=config.rows_per_file,
        interval_seconds=config.interval_seconds,
        mix=config.injection,
    )
    app = Flask("sandbox_tax_authority")
    app.extensions[EXTENSION_KEY] = folder
    install_faults(app, config.faults)

    @app.get("/health")
    def health() -> Response:
        return jsonify({"status": "ok", "service": "tax-authority"})

    @app.get("/status")
    def status() -> Response:
        return jsonify(folder.status())

    @app.get("/drop-folder")
    def drop_folder() -> Response:
        return jsonify({"path": str(folder.folder)})

    @app.get("/drops")
    def list_drops() -> Response:
        drops = folder.drops()
        return jsonify({"drop_folder": str(folder.folder), "count": len(drops), "drops": drops})

    @app.get("/drops/<drop_id>")
    def get_drop(drop_id: str) -> Response | tuple[Response, int]:
        found = folder.drop(drop_id)
        if found is None:
            return _error(404, "not_found", f"no drop {drop_id!r}; GET /drops lists them")
        return jsonify(found)

    @app.post("/drops")
    def trigger_drop() -> tuple[Response, int]:
        try:
            drop_request = DropRequest.from_json(_json_body(allow_empty=True))
            record = folder.drop_now(drop_request)
        except ValueError as exc:
            return _error(400, "bad_request", str(exc))
        except UnknownPeriodError as exc:
            return _error(404, "unknown_period", str(exc.args[0]))
        return jsonify(record), 201

    lookup = _taxpayer_index(config, periods)

    @app.post("/taxpayers/lookup")
    def taxpayer_lookup() -> Response | tuple[Response, int]:
        """Read-only: one person's taxpayer records and returns, asked by national ID (a POST,
        so the ID is not written into URLs and access logs)."""
        try:
            body = _json_body(allow_empty=False)
        except ValueError as exc:
            return _error(400, "bad_request", str(exc))
        national_id = body.get("national_id")
        if not isinstance(national_id, str) or not national_id.isdigit() or len(national_id) > 20:
            return _error(400, "bad_request", "national_id: a string of digits is required")
        found = lookup.get(national_id)
        if found is None:
            return _error(404, "not_found", "no taxpayer with this national ID")
        return jsonify({"national_id": national_id, **found})

    @app.get("/schema/income-extract.xsd")
    def schema() -> Response:
        """The published XSD of the XML variant, so receivers can validate at the edge."""
        return Response(formats.XSD_PATH.read_bytes(), content_type="application/xml")

    @app.route("/injection", methods=["GET", "PUT", "PATCH"])
    def injection() -> Response | tuple[Response, int]:
        if request.method != "GET":
            try:
                body = _json_body(allow_empty=False)
                if request.method == "PATCH":
                    body = {**folder.mix.to_json(), **body}
                folder.set_mix(InjectionMix.from_json(body))
            except ValueError as exc:
                return _error(400, "bad_request", str(exc))
        return jsonify(folder.mix.to_json())

    if config.drop_on_start:
        with contextlib.suppress(UnknownPeriodError):  # an empty population drops nothing
            folder.drop_now()
    folder.start()
    add_shutdown_hook(app, folder.stop)
    return app


def _taxpayer_index(
    config: TaxAuthorityConfig, periods: dict[str, list[Row]]
) -> dict[str, dict[str, Any]]:
    """National ID -> the authority's taxpayer records (with the registered address it keeps,
    geocoded) and every return filed under that ID, oldest period first."""
    copies = taxpayers(config.households, config.seed, config.noise_rate)
    addresses: dict[str, dict[str, Any]] = {}
    for household in config.households:
        for person in household.members:
            if person.tax_id:
                addresses[person.tax_id] = {
                    "line": household.address,
                    "locality_code": household.locality_code,
                    "lat": household.latitude,
                    "lon": household.longitude,
                }
    index: dict[str, dict[str, Any]] = {}
    for rows in periods.values():
        for row in rows:
            national_id = row["NATIONAL_ID"]
            if not national_id:
                continue
            entry = index.setdefault(national_id, {"taxpayers": [], "returns": []})
            entry["returns"].append(dict(row))
            tin = row["TAXPAYER_TIN"]
            if all(t["tin"] != tin for t in entry["taxpayers"]):
                copy = copies.get(tin)
                entry["taxpayers"].append(
                    {
                        "tin": tin,
                        "national_id": national_id,
                        "name": row["TAXPAYER_NAME"],
                        "phone": copy.phone if copy is not None else None,
                        "registered_address": addresses.get(tin),
                    }
                )
    return index


def drop_folder_of(app: Flask) -> TaxDropFolder:
    """The drop folder behind an app built by ``create_app`` (for the launcher and tests)."""
    found = app.extensions[EXTENSION_KEY]
    assert isinstance(found, TaxDropFolder)
    return found
