"""PWMs and the motif databases: MEME files (memelite), JASPAR (offline, pyjaspar's bundled databases), Tomtom.

All PWMs are numpy arrays ``(4, width)`` in A, C, G, T order.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .._checks import AnyOf, BadValue, Choice, Int, Names, OptionalOf, Spec, Text, declare, existing_file
from ..errors import ArgumentError, FileFormatError
from .pwm import ALPHABET, Pwms, check_pwm, to_pwm


def write_meme(pwms: Iterable[np.ndarray] | np.ndarray, names: Sequence[str], path: str | Path) -> Path:
    """Write PWMs ((4, width) each, A, C, G, T) to a MEME-format file (memelite's writer).

    Parameters
    ----------
    names : sequence of str
        One unique motif name per PWM (the rest of each ``MOTIF`` line, e.g. ``"ch3"`` or ``"MA0139.1 CTCF"``).
    """
    from memelite.io import write_meme as _write

    pwms = [check_pwm(p, f"pwm {i}") for i, p in enumerate(pwms)]
    names = [str(n) for n in names]
    if len(names) != len(pwms):
        raise ArgumentError(f"names: expected one name per PWM ({len(pwms)}), got {len(pwms)} PWMs but "
                            f"{len(names)} names")
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ArgumentError(f"names: expected unique motif names, got {repeated[:5]} more than once")
    if any(not n.strip() or "\n" in n for n in names):
        bad = next(n for n in names if not n.strip() or "\n" in n)
        raise ArgumentError(f"names: expected non-empty single-line motif names, got {bad!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(str(path), dict(zip(names, pwms)))
    return path


def read_meme(path: str | Path) -> dict[str, np.ndarray]:
    """Read a MEME-format file: ``{name: (4, width) PWM}`` in file order.

    A file that is not a complete MEME file of DNA motifs (no ``MOTIF`` line, a motif without its
    ``letter-probability matrix``, a row without 4 numbers, a matrix cut short, a name used twice) is a
    :class:`~deepresolve.errors.FileFormatError` naming the file, the line and what was missing, never a partial or
    empty dict.
    """
    from memelite.io import read_meme as _read

    path = existing_file(path, "MEME file")
    # memelite skips what it cannot read (a file without motifs gives {}), so the layout is checked first
    problem = _meme_problem(path)
    if problem is not None:
        raise FileFormatError(f"MEME file {str(path)!r}: {problem}")
    return {k: np.asarray(v, dtype=np.float64) for k, v in _read(str(path)).items()}


def _meme_problem(path: Path) -> str | None:
    """What makes ``path`` not a complete MEME file of DNA motifs (as memelite reads them), or None."""
    names: list[str] = []
    motif: str | None = None
    width: int | None = None
    rows = 0
    try:
        with open(path) as f:
            for n, line in enumerate(f, start=1):
                if motif is None:
                    if line.startswith("MOTIF"):
                        motif = " ".join(line[5:].split())
                        if motif in names:
                            return f"line {n}: expected a new motif name, got {motif!r} a second time"
                        names.append(motif)
                elif width is None:
                    if line.startswith("MOTIF"):
                        return (f"line {n}: expected a 'letter-probability matrix' line for motif {motif!r}, got "
                                f"the next MOTIF line")
                    if line.startswith("letter"):
                        w = re.search(r"\bw=\s*(\d+)", line)
                        if w is None or int(w.group(1)) == 0:
                            return (f"line {n}: expected 'w=<width>' (>= 1) on the matrix line of motif "
                                    f"{motif!r}, got {line.strip()!r:.80}")
                        width, rows = int(w.group(1)), 0
                else:
                    values = line.split()
                    try:
                        [float(v) for v in values]
                    except ValueError:
                        values = []
                    if len(values) != len(ALPHABET):
                        return (f"line {n}: expected a row of {len(ALPHABET)} probabilities (A, C, G, T) of motif "
                                f"{motif!r}, got {line.strip()!r:.80}")
                    rows += 1
                    if rows == width:
                        motif, width = None, None
    except UnicodeDecodeError:
        return "expected a text file, got bytes that are not text"
    if not names:
        return "expected at least one 'MOTIF' line, got none"
    if motif is not None and width is None:
        return f"expected a 'letter-probability matrix' line for motif {motif!r}, got the end of the file"
    if motif is not None:
        return f"expected {width} rows in the matrix of motif {motif!r}, got {rows} before the end of the file"
    return None


class JasparRelease(Spec):
    """A JASPAR release bundled with pyjaspar, e.g. "JASPAR2024" (jaspardb() only prints on an unknown one)."""

    def check(self, value: object, argument: str) -> str:
        from pyjaspar import jaspar_releases

        releases = list(jaspar_releases)
        if value not in releases:
            raise ArgumentError(f"{self.name(argument)}: expected a JASPAR release bundled with pyjaspar "
                                f"({', '.join(releases)}), got {value!r}")
        return value

    def describe(self) -> str:
        return "a JASPAR release bundled with pyjaspar"

    def admits(self, value: object) -> bool:
        return isinstance(value, str)

    def bad_values(self, argument: str) -> list[BadValue]:
        expected = f"{self.name(argument)}: expected a JASPAR release bundled with pyjaspar"
        return [BadValue(2024, "wrong type", expected), BadValue("JASPAR1999", "out of range", expected)]


@lru_cache(maxsize=8)
def _jaspar(release: str, collection: str, tax_group: str | None) -> tuple[tuple[str, np.ndarray], ...]:
    from pyjaspar import jaspardb

    db = jaspardb(release=release)
    kwargs = {"collection": collection}
    if tax_group is not None:
        kwargs["tax_group"] = [tax_group]
    motifs = db.fetch_motifs(**kwargs)
    if not motifs:
        raise ArgumentError(f"collection, tax_group: expected a collection and tax group with motifs in {release}, "
                            f"got {collection!r}, {tax_group!r}")
    out = []
    for m in motifs:
        counts = np.array([m.counts[b] for b in ALPHABET], dtype=np.float64)
        out.append((f"{m.matrix_id} {m.name}", to_pwm(counts)))
    return tuple(out)


@declare(release=JasparRelease(), collection=Text("a JASPAR collection, e.g. 'CORE'"),
         tax_group=OptionalOf(Text("a JASPAR taxonomic group, e.g. 'vertebrates'")))
def jaspar_motifs(release: str = "JASPAR2024", *, collection: str = "CORE",
                  tax_group: str | None = "vertebrates") -> dict[str, np.ndarray]:
    """JASPAR motifs as PWMs, offline from pyjaspar's bundled SQLite databases.

    Only the latest version of each matrix is returned. JASPAR2016 (519 CORE vertebrate matrices) is the bundled
    release closest to the JASPAR 2015 set of the paper.

    Returns
    -------
    dict
        ``"<matrix id> <name>"`` (e.g. ``"MA0139.1 CTCF"``) → (4, width) PWM, columns summing to 1.
    """
    return {k: v.copy() for k, v in _jaspar(release, collection, tax_group)}


@declare(pwms=Pwms(), targets=Pwms(names=True), names=OptionalOf(Names()), n_matches=OptionalOf(Int(minimum=1)),
         n_jobs=AnyOf(Choice(-1), Int(minimum=1)))
def tomtom_matches(
    pwms: Sequence[np.ndarray] | np.ndarray,
    targets: dict[str, np.ndarray],
    *,
    names: Sequence[str] | None = None,
    n_matches: int | None = None,
    n_jobs: int = -1,
) -> pd.DataFrame:
    """Tomtom similarity of every query PWM to every target (memelite's implementation).

    Parameters
    ----------
    pwms : sequence of (4, width) arrays
        Queries.
    targets : dict
        Name → (4, width) PWM, e.g. :func:`jaspar_motifs`. Tomtom's null distribution is built from the target
        columns, so use a whole database (memelite warns below 25 targets).
    names : sequence of str, optional
        Query names; default ``"0"``, ``"1"``, ...
    n_matches : int, optional
        Keep only each query's ``n_matches`` best targets.
    n_jobs : int
        Threads of memelite's Tomtom: -1 (default) for all, or a number >= 1.

    Returns
    -------
    pandas.DataFrame
        One row per (query, target): ``query``, ``target``, ``p_value``, ``q_value`` (Benjamini–Hochberg over the
        query's targets), ``score``, ``offset``, ``overlap``, ``strand`` ("+" or "-"), ``rank`` (1 = best),
        sorted by query then rank.
    """
    from memelite.tomtom import tomtom

    names = [str(i) for i in range(len(pwms))] if names is None else [str(n) for n in names]
    if len(names) != len(pwms):
        raise ArgumentError(f"names: expected one name per PWM ({len(pwms)}), got {len(pwms)} PWMs but "
                            f"{len(names)} names")
    tnames = list(targets)
    p, scores, offsets, overlaps, strands = tomtom(pwms, [targets[t] for t in tnames], n_jobs=n_jobs)[:5]
    rows = []
    for i, q in enumerate(names):
        pv = np.clip(p[i], 0, 1)
        order = np.argsort(pv, kind="stable")
        m = len(pv)
        # Benjamini–Hochberg q-values over this query's targets
        ranked = pv[order] * m / np.arange(1, m + 1)
        qv_sorted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1)
        qv = np.empty(m)
        qv[order] = qv_sorted
        keep = order if n_matches is None else order[:n_matches]
        for r, j in enumerate(keep, start=1):
            rows.append({"query": q, "target": tnames[j], "p_value": float(pv[j]), "q_value": float(qv[j]),
                         "score": float(scores[i, j]), "offset": int(offsets[i, j]), "overlap": int(overlaps[i, j]),
                         "strand": "+" if int(strands[i, j]) == 0 else "-", "rank": r})
    return pd.DataFrame(rows)
