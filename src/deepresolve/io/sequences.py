"""DNA sequences as one-hot arrays ``(N, 4, L)`` (rows A, C, G, T; N is an all-zero column) and FASTA files.

Encoding is tangermeme's (:func:`tangermeme.utils.one_hot_encode`); this module adds batches of strings, the
float32 ``(N, 4, L)`` layout of the rest of the package, and errors that name the sequence and the letter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

ALPHABET = "ACGT"


def _bad_letter(seqs: Sequence[str], where: str) -> ValueError:
    """The error for the first letter outside A, C, G, T, N (any case) in ``seqs``."""
    allowed = set(ALPHABET + "N")
    for n, s in enumerate(seqs):
        for pos, ch in enumerate(s.upper()):
            if ch not in allowed:
                return ValueError(f"{where}sequence {n} has {s[pos]!r} at position {pos}; "
                                  "expected only A, C, G, T or N")
    return ValueError(f"{where}could not be one-hot encoded")


def one_hot(seqs: str | Sequence[str], *, where: str = "one_hot: ") -> np.ndarray:
    """One-hot encode DNA strings.

    Parameters
    ----------
    seqs : str or sequence of str
        Sequences of equal length over A, C, G, T (case-insensitive). N is encoded as an all-zero column; any
        other letter is an error naming the sequence, the letter and its position.
    where : str
        Prefix of error messages (e.g. the file the sequences came from).

    Returns
    -------
    (N, 4, L) float32 array (N = 1 for a single string).
    """
    from tangermeme.utils import one_hot_encode

    if isinstance(seqs, str):
        seqs = [seqs]
    seqs = list(seqs)
    if len(seqs) == 0:
        raise ValueError(f"{where}got no sequences; expected at least one string")
    if not all(isinstance(s, str) for s in seqs):
        bad = next(type(s).__name__ for s in seqs if not isinstance(s, str))
        raise TypeError(f"{where}every sequence must be a str, got a {bad}")
    lengths = {len(s) for s in seqs}
    if len(lengths) != 1:
        raise ValueError(f"{where}sequences must all have the same length, got lengths {sorted(lengths)[:5]}")
    L = lengths.pop()
    try:
        # one call on the concatenation: tangermeme's per-call overhead would dominate for 10^5 short sequences
        x = one_hot_encode("".join(seqs).upper(), alphabet=list(ALPHABET), ignore=["N"])
    except (ValueError, UnicodeError):
        raise _bad_letter(seqs, where) from None
    return x.numpy().astype(np.float32).reshape(4, len(seqs), L).transpose(1, 0, 2).copy()


def decode(x: np.ndarray) -> list[str]:
    """Turn one-hot sequences (N, 4, L) (or one (4, L)) back into strings; all-zero columns become N."""
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] != 4:
        raise ValueError(f"decode: expected a one-hot array of shape (N, 4, L) or (4, L), got shape {x.shape}")
    letters = np.array(list(ALPHABET + "N"))
    idx = np.where(x.max(axis=1) > 0, x.argmax(axis=1), 4)
    return ["".join(row) for row in letters[idx]]


def write_fasta(path: str | Path, seqs: np.ndarray | Sequence[str], *, names: Iterable[str] | None = None) -> Path:
    """Write sequences (strings or one-hot (N, 4, L)) to a FASTA file, one line per sequence."""
    if isinstance(seqs, np.ndarray):
        seqs = decode(seqs)
    elif isinstance(seqs, str):
        seqs = [seqs]
    seqs = list(seqs)
    names = [f"seq{i}" for i in range(len(seqs))] if names is None else list(names)
    if len(names) != len(seqs):
        raise ValueError(f"write_fasta: got {len(names)} names for {len(seqs)} sequences")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for name, s in zip(names, seqs):
            f.write(f">{name}\n{s}\n")
    return path


def read_fasta(path: str | Path) -> tuple[list[str], list[str]]:
    """Read a FASTA file into (names, sequences)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"FASTA file {str(path)!r} does not exist")
    names, seqs = [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith(">"):
                names.append(line[1:])
                seqs.append("")
            elif line:
                if not seqs:
                    raise ValueError(f"read_fasta: {str(path)!r} has sequence before the first '>' header")
                seqs[-1] += line
    return names, seqs


def load_inputs(source: str | Path | np.ndarray) -> np.ndarray:
    """One-hot inputs (N, 4, L) from an array, a ``.npy``/``.npz`` file or a FASTA file of equal-length sequences.

    FASTA letters outside A, C, G, T, N (any case) are an error naming the file, the sequence and the letter.
    """
    if isinstance(source, np.ndarray):
        return source
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"inputs file {str(path)!r} does not exist")
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".npz":
        data = np.load(path)
        return data[data.files[0]]
    names, seqs = read_fasta(path)
    if not seqs:
        raise ValueError(f"{str(path)!r} holds no FASTA sequences")
    if len({len(s) for s in seqs}) != 1:
        raise ValueError(f"{str(path)!r} must hold FASTA sequences of one common length")
    return one_hot(seqs, where=f"{str(path)!r}: ")
