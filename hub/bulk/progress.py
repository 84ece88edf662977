"""A progress bar by lines of the file (rich), shown only when someone watches a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.bulk.reading import count_lines


@contextmanager
def line_progress(path: Path, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(last_line_done)``; a no-op when not ``enabled``."""
    if not enabled:
        yield lambda _line: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    total = count_lines(path)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("lines"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(path.name, total=total)

        def advance(line: int) -> None:
            progress.update(task, completed=min(line, total))

        yield advance
