"""``srhub matcher``: learn the person-matching model from the registry's records.

    srhub matcher train --input persons.csv --output model.json [--lenient-dates]
    srhub matcher show model.json

``train`` reads a person CSV (the columns ``srhub dedup`` reads), learns m, u, the prior and
the name frequencies from it (``registry_core.matching.training``) and writes the model in
splink's JSON settings format, with the hub's thresholds and name frequencies in
``<name>.srhub.json`` beside it. Point ``SRHUB_MATCHER_MODEL`` at the JSON file and the hub
resolves incoming persons with it; ``srhub dedup --model`` uses it for a batch; splink reads
the same file (docs/matching.md). ``show`` prints the weights in bits. Neither prints a value
from the data: the frequencies file holds names, and is personal data to keep like the CSV.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

import click

from registry_core.matching import TrainedModel, TrainingOptions, train


@click.group()
def matcher() -> None:
    """Train and inspect the person-matching model."""


@matcher.command("train")
@click.option(
    "--input",
    "input_file",
    required=True,
    type=click.File("r", encoding="utf-8-sig"),
    help="Person CSV (the columns srhub dedup reads; id required).",
)
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the model (splink settings JSON; <name>.srhub.json goes beside it).",
)
@click.option("--lenient-dates", is_flag=True, help="As for srhub dedup.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random pairs.")
def train_command(input_file: IO[str], output: Path, lenient_dates: bool, seed: int) -> None:
    """Learn a model from a person CSV and write it."""
    from hub.cli.dedup import read_records
    from hub.settings import load_identifier_profile, load_settings

    identifiers = load_identifier_profile(load_settings())
    records = list(
        read_records(input_file, sys.stderr, lenient_dates=lenient_dates, identifiers=identifiers)
    )
    if len(records) < 2:
        raise click.ClickException("training needs at least two readable records")
    try:
        model = train(records, TrainingOptions(seed=seed))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    model.save(output)
    click.echo(
        f"matcher: trained on {len(records)} records; "
        f"probability two random records match {model.probability_two_random_records_match:.3g}; "
        f"model written to {output}",
        err=True,
    )


@matcher.command("show")
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def show(model_file: Path) -> None:
    """Print a model's weights (bits per comparison level) as JSON."""
    try:
        model = TrainedModel.load(model_file)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(model.summary(), indent=2))
