"""``srhub dedup``: find records of the same person in a CSV file.

    srhub dedup --input persons.csv --output pairs.csv [--threshold 0.99] [--review-output r.csv]
                [--model model.json | --train]

The input header may use any of the columns in ``registry_core.matching.FIELDS`` (``id`` is
required, the others optional, any order). Rows are streamed with the csv module; a row whose
values cannot be read (bad date, unknown sex code, duplicate or empty id, wrong number of
cells) is skipped with its row number, column and reason on stderr. The values themselves are
never printed: they are personal data. Output rows are ``id_a,id_b,score`` with
``id_a < id_b``, sorted, one per pair judged the same person; ``--review-output`` gets the
possible matches that need a person's decision.

By default the built-in matcher scores (fixed priors, for any size of file). ``--model`` scores
with a model learnt by ``srhub matcher train``; ``--train`` learns one from the input first
(docs/matching.md: better on a few thousand records or more, where the data can teach it).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Protocol

import click

from registry_core.matching import (
    FIELDS,
    FieldError,
    Matcher,
    MatcherConfig,
    Outcome,
    PersonRecord,
    ScoredPair,
    TrainedMatcher,
    TrainedModel,
    person_from_mapping,
    train,
)
from standards.identifiers import IdentifierProfile


class InputError(click.ClickException):
    """A problem with the input file as a whole (header): nothing can be matched."""


def read_records(
    handle: IO[str],
    warn: IO[str] | None = None,
    *,
    lenient_dates: bool = False,
    identifiers: IdentifierProfile | None = None,
) -> Iterator[PersonRecord]:
    """Yield the readable records of a person CSV; report skipped rows on ``warn``.

    ``identifiers``: the country profile whose ``national_id`` normalisation is applied before
    comparing (so ``0012-345`` and ``12345`` compare as the profile says they are written).

    Raises :class:`InputError` when the header is missing, lacks ``id`` or names a column we do
    not know (a typo there would otherwise silently drop a whole field), or when the file is
    not UTF-8 text. With ``lenient_dates`` a row whose birth date cannot be read is kept: an
    impossible but well-formed date (``1984-02-30``) as typed, anything else as missing.
    """
    out = warn if warn is not None else sys.stderr
    try:
        yield from _read(handle, out, lenient_dates, identifiers)
    except UnicodeDecodeError:
        raise InputError("the input file is not UTF-8 text") from None


class _CsvReader(Protocol):
    """What ``csv.reader`` returns, as far as it is used here."""

    line_num: int

    def __next__(self) -> list[str]: ...


def _rows(reader: _CsvReader, out: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """Rows with their line-based row numbers; a row the csv module cannot parse is skipped."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            _skip(out, reader.line_num, "-", f"unreadable CSV ({exc})")
            continue
        yield reader.line_num, cells


def _read(
    handle: IO[str], out: IO[str], lenient_dates: bool, identifiers: IdentifierProfile | None
) -> Iterator[PersonRecord]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        raise InputError("the input file is empty: expected a header row")
    columns = [name.strip().lower() for name in header]
    unknown = [name for name in columns if name not in FIELDS]
    if unknown:
        raise InputError(
            f"unknown column(s) in the header: {', '.join(unknown)}; "
            f"accepted columns are: {', '.join(FIELDS)}"
        )
    if "id" not in columns:
        raise InputError(
            f"the header has no 'id' column; accepted columns are: {', '.join(FIELDS)}"
        )
    if len(set(columns)) != len(columns):
        raise InputError("the header names a column twice")
    seen: set[str] = set()
    for row_number, cells in _rows(reader, out):
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(cells) != len(columns):
            _skip(out, row_number, "-", f"has {len(cells)} cells, the header has {len(columns)}")
            continue
        row = dict(zip(columns, cells, strict=True))
        if identifiers is not None and row.get("national_id"):
            row["national_id"] = identifiers.normalise("national_id", row["national_id"])
        try:
            record = person_from_mapping(row)
        except FieldError as exc:
            if not (lenient_dates and exc.column == "birth_date"):
                _skip(out, row_number, exc.column, exc.reason)
                continue
            try:
                record = person_from_mapping(row, lenient_dates=True)
            except FieldError as other:
                _skip(out, row_number, other.column, other.reason)
                continue
            kept = "kept as typed" if record.birth else "ignored"
            click.echo(f"row {row_number}: column birth_date: {exc.reason}; {kept}", file=out)
        if record.id in seen:
            _skip(out, row_number, "id", "repeats the id of an earlier row")
            continue
        seen.add(record.id)
        yield record


def _trained_pairs(
    records: list[PersonRecord],
    model_file: Path | None,
    threshold: float | None,
    include_review: bool,
) -> list[ScoredPair]:
    """Pairs under a trained model: the one in ``model_file``, or one learnt from ``records``."""
    try:
        model = TrainedModel.load(model_file) if model_file is not None else train(records)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if threshold is not None:
        model = replace(
            model, threshold=threshold, review_threshold=min(model.review_threshold, threshold)
        )
    return TrainedMatcher(model).pairs(records, include_review=include_review)


def _skip(out: IO[str], row_number: int, column: str, reason: str) -> None:
    click.echo(f"skipped row {row_number}: column {column}: {reason}", file=out)


@click.command()
@click.option(
    "--input",
    "input_file",
    required=True,
    type=click.File("r", encoding="utf-8-sig"),
    help="CSV with a header of any of: " + ", ".join(FIELDS) + " (id required).",
)
@click.option(
    "--output",
    "output_file",
    required=True,
    type=click.File("w", encoding="utf-8"),
    help="Where to write id_a,id_b,score for pairs judged the same person.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=None,
    help="Score (0-1) from which a pair is a match (default 0.99; with a trained model its "
    "own, 0.5).",
)
@click.option(
    "--lenient-dates",
    is_flag=True,
    help="Keep rows whose birth date is unreadable instead of skipping them: an impossible "
    "date such as 1984-02-30 is compared as typed (a typo still carries evidence), anything "
    "else is treated as missing.",
)
@click.option(
    "--model",
    "model_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Score with this trained model (srhub matcher train) instead of the built-in matcher.",
)
@click.option(
    "--train",
    "train_here",
    is_flag=True,
    help="Learn a model from the input itself first (needs a few thousand records to be "
    "stable) and score with it.",
)
@click.option(
    "--review-output",
    type=click.File("w", encoding="utf-8"),
    default=None,
    help="Also write possible matches (for a person to review) to this CSV.",
)
def dedup(
    input_file: IO[str],
    output_file: IO[str],
    threshold: float | None,
    review_output: IO[str] | None,
    lenient_dates: bool,
    model_file: Path | None,
    train_here: bool,
) -> None:
    """Find pairs of records that are the same person."""
    if model_file is not None and train_here:
        raise click.UsageError("give --model or --train, not both")
    config = MatcherConfig()
    if threshold is not None:
        config = replace(
            config,
            match_threshold=threshold,
            review_threshold=min(config.review_threshold, threshold),
        )
    from hub.settings import load_identifier_profile, load_settings

    identifiers = load_identifier_profile(load_settings())
    records = list(
        read_records(input_file, sys.stderr, lenient_dates=lenient_dates, identifiers=identifiers)
    )
    include_review = review_output is not None
    if model_file is not None or train_here:
        pairs = _trained_pairs(records, model_file, threshold, include_review)
    else:
        pairs = Matcher(config).pairs(records, include_review=include_review)
    matches = reviews = 0
    writer = csv.writer(output_file, lineterminator="\n")
    writer.writerow(["id_a", "id_b", "score"])
    review_writer = None
    if review_output is not None:
        review_writer = csv.writer(review_output, lineterminator="\n")
        review_writer.writerow(["id_a", "id_b", "score"])
    for pair in pairs:
        row = [pair.id_a, pair.id_b, f"{pair.score:.4f}"]
        if pair.outcome is Outcome.MATCH:
            writer.writerow(row)
            matches += 1
        elif review_writer is not None:
            review_writer.writerow(row)
            reviews += 1
    summary = f"dedup: {len(records)} records, {matches} matching pairs"
    if review_writer is not None:
        summary += f", {reviews} pairs to review"
    click.echo(summary, err=True)
