"""Long tables of a result, one row per (class, channel), per (class, level, pair) or per motif group, and writing
them as TSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def groups_long(interactions: Interactions) -> pd.DataFrame:
    """One row per motif group: its word (N: a base left to the background), channels, the groups it is a copy of
    (``group_copies``), the consensus of its PWM, and its best JASPAR matches (``group_matches``: target,
    p-value and q-value by rank; empty without matching)."""
    rows = []
    matches = interactions.group_matches
    for g, name in enumerate(interactions.group_names):
        word, _, members = name.partition(" (")
        row = {"group": g, "word": word, "channels": members.rstrip(")")}
        if interactions.group_copies is not None:
            row["copy_of"] = ",".join(str(h) for h in np.flatnonzero(interactions.group_copies[g]) if h != g)
        if interactions.group_pwms is not None:
            pwm = interactions.group_pwms[g]
            row["pwm_consensus"] = "".join("ACGT"[pwm[:, j].argmax()] for j in range(pwm.shape[1]) if pwm[:, j].sum())
        if matches is not None:
            for r in matches[matches["group"] == g].sort_values("rank").itertuples():
                row.update({f"match_{r.rank}": r.target, f"match_{r.rank}_p": r.p_value,
                            f"match_{r.rank}_q": r.q_value})
        rows.append(row)
    return pd.DataFrame(rows)


def write_tsv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as a tab-separated table, atomically (a kill never leaves half a table)."""
    return write_atomic(path, lambda f: df.to_csv(f, sep="\t", index=False))
