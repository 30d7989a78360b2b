"""Progress bars with the time left (rich), one home for them: the ascent's rows, the interaction analysis' pairs."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def progress_bar(label: str, unit: str, total: int, *, done: int = 0,
                 show: bool = True) -> Iterator[Callable[[int], None] | None]:
    """A progress bar of ``total`` items, shown while the block runs: ``label``, the bar, ``done/total unit``, the
    time elapsed and the time left.

    Parameters
    ----------
    label : str
        What is being computed, e.g. "gradient ascent".
    unit : str
        What is counted, e.g. "(class, restart) pairs".
    total : int
        Items in all.
    done : int
        Items already finished (e.g. read from a checkpoint); the time left is estimated from this run's pace.
    show : bool
        False: no bar, and the block gets None.

    Yields
    ------
    callable or None
        ``advance(n)``: n more items finished.
    """
    if not show:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
                   TimeRemainingColumn())
    task = bar.add_task(label, total=total, completed=done)
    bar.start()
    try:
        yield lambda n: bar.advance(task, n)
    finally:
        bar.stop()
