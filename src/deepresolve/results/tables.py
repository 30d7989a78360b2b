"""Long tables of a result, one row per (class, channel) or per (class, level, pair), and writing them as TSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .._files import write_atomic
from .interactions import Interactions
from .result import Result


def channels_long(result: Result) -> pd.DataFrame:
    """One row per (class, channel): :meth:`Result.channel_table` of every class, classes by output index."""
    frames = []
    for output, name in zip(result.classes.tolist(), result.class_names):
        df = result.channel_table(int(output))
        df.insert(0, "class", name)
        df.insert(0, "output", int(output))
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def pairs_long(interactions: Interactions) -> pd.DataFrame:
    """Every evaluated pair: one row per (class, level, pair), group level first, each by |interaction|."""
    frames = []
    for output, name in zip(interactions.classes.tolist(), interactions.class_names):
        for level in ("group", "channel"):
            df = interactions.table(int(output), level=level, top=None)
            df.insert(0, "level", level)
            df.insert(0, "class", name)
            df.insert(0, "output", int(output))
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


def write_tsv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as a tab-separated table, atomically (a kill never leaves half a table)."""
    return write_atomic(path, lambda f: df.to_csv(f, sep="\t", index=False))
