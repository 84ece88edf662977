"""``srhub scoring``: scoring models and program eligibility rules from the command line.

    srhub scoring models                                 # every version, its state
    srhub scoring upload CODE FILE.json [--activate]     # a new model version (checked)
    srhub scoring activate CODE VERSION [--no-rescore]
    srhub scoring rescore [--model CODE] [--as-of YYYY-MM-DD]
    srhub scoring rule-upload PROGRAM FILE.json [--activate]

A large registry is re-scored here rather than through the API (no HTTP timeout); the report
says how many households each model scored, how long it took and what changed per program.
Errors (a refused definition, an unknown version) are printed with their reason, exit 1.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click

from hub.cli.database import hub_runtime
from hub.cli.errors import CommandError
from registry_core.errors import BusinessRuleViolation, InvalidRecord, NotFound


@click.group()
def scoring() -> None:
    """Scoring models, eligibility rules, re-scoring (docs/policy.md)."""


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None


def _echo(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def _refused(exc: Exception) -> CommandError:
    if isinstance(exc, InvalidRecord):
        return CommandError("; ".join(f"{v.path}: {v.message}" for v in exc.violations))
    return CommandError(str(exc))


def _rescore_after_activation(scoring_: Any, code: str) -> None:
    """Re-score under the version just activated; one valid only from a later date stays
    active without scoring (said, not an error: the activation is done)."""
    try:
        _echo(scoring_.rescore_all(code).as_dict())
    except BusinessRuleViolation as exc:
        click.echo(f"not re-scored: {exc}")


@scoring.command("models")
def models_command() -> None:
    """List every model version: code, version, state, form."""
    with hub_runtime() as runtime:
        for view in runtime.registry.scoring.list_models():
            click.echo(f"{view['code']}\tv{view['version']}\t{view['status']}\t{view['form']}")


@scoring.command("upload")
@click.argument("code")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--activate", is_flag=True, help="Activate it and re-score at once.")
def upload_command(code: str, path: Path, activate: bool) -> None:
    """Upload FILE as the next version of model CODE."""
    with hub_runtime() as runtime:
        scoring_ = runtime.registry.scoring
        try:
            view = scoring_.add_model_version(code, _read(path), "cli")
            click.echo(f"stored {code} version {view['version']}")
            if activate:
                scoring_.activate_model(code, view["version"])
                _rescore_after_activation(scoring_, code)
        except (InvalidRecord, NotFound, BusinessRuleViolation) as exc:
            raise _refused(exc) from None


@scoring.command("activate")
@click.argument("code")
@click.argument("version", type=int)
@click.option("--no-rescore", is_flag=True, help="Only activate; re-score later.")
def activate_command(code: str, version: int, no_rescore: bool) -> None:
    """Make VERSION the active version of CODE and re-score under it."""
    with hub_runtime() as runtime:
        scoring_ = runtime.registry.scoring
        try:
            scoring_.activate_model(code, version)
            click.echo(f"{code} version {version} is active")
            if not no_rescore:
                _rescore_after_activation(scoring_, code)
        except (InvalidRecord, NotFound, BusinessRuleViolation) as exc:
            raise _refused(exc) from None


@scoring.command("rescore")
@click.option("--model", "code", default=None, help="Only this model (default: every active).")
@click.option("--as-of", default=None, help="Count ages on this date (YYYY-MM-DD; default today).")
def rescore_command(code: str | None, as_of: str | None) -> None:
    """Re-score every household, set-based, then decide the programs again."""
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--as-of") from None
    with hub_runtime() as runtime:
        try:
            _echo(runtime.registry.scoring.rescore_all(code, as_of=day).as_dict())
        except (InvalidRecord, NotFound, BusinessRuleViolation) as exc:
            raise _refused(exc) from None


@scoring.command("rule-upload")
@click.argument("program")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--activate", is_flag=True, help="Activate it and decide every household.")
def rule_upload_command(program: str, path: Path, activate: bool) -> None:
    """Upload FILE as the next eligibility rule version of PROGRAM."""
    with hub_runtime() as runtime:
        scoring_ = runtime.registry.scoring
        try:
            view = scoring_.add_rule_version(program, _read(path), "cli")
            click.echo(f"stored the rule of {program} version {view['version']}")
            if activate:
                _echo(scoring_.activate_rule(program, view["version"])["decided"])
        except (InvalidRecord, NotFound, BusinessRuleViolation) as exc:
            raise _refused(exc) from None
