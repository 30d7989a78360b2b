"""DNA sequences as one-hot arrays ``(N, 4, L)`` (rows A, C, G, T; N is an all-zero column) and FASTA files.

Encoding is tangermeme's (:func:`tangermeme.utils.one_hot_encode`); this module adds batches of strings, the
float32 ``(N, 4, L)`` layout of the rest of the package, and errors that name the sequence and the letter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .._checks import existing_file
from ..errors import ArgumentError, FileFormatError

ALPHABET = "ACGT"


def _bad_letter(seqs: Sequence[str], where: str) -> ArgumentError:
    """The error for the first letter outside A, C, G, T, N (any case) in ``seqs``."""
    allowed = set(ALPHABET + "N")
    for n, s in enumerate(seqs):
        for pos, ch in enumerate(s.upper()):
            if ch not in allowed:
                return ArgumentError(f"{where}expected only A, C, G, T or N, got {s[pos]!r} in sequence {n} at "
                                     f"position {pos}")
    return ArgumentError(f"{where}expected sequences over A, C, G, T or N, got ones tangermeme cannot one-hot encode")


def one_hot(seqs: str | Sequence[str], *, where: str = "seqs: ") -> np.ndarray:
    """One-hot encode DNA strings.

    Parameters
    ----------
    seqs : str or sequence of str
        Sequences of equal length over A, C, G, T (case-insensitive). N is encoded as an all-zero column; any
        other letter is an error naming the sequence, the letter and its position.
    where : str
        Prefix of error messages: the argument or the file the sequences came from.

    Returns
    -------
    (N, 4, L) float32 array (N = 1 for a single string).
    """
    from tangermeme.utils import one_hot_encode

    if isinstance(seqs, str):
        seqs = [seqs]
    seqs = list(seqs)
    if len(seqs) == 0:
        raise ArgumentError(f"{where}expected at least one sequence, got none")
    if not all(isinstance(s, str) for s in seqs):
        bad = next(type(s).__name__ for s in seqs if not isinstance(s, str))
        raise ArgumentError(f"{where}expected every sequence to be a str, got a {bad}")
    lengths = {len(s) for s in seqs}
    if len(lengths) != 1:
        raise ArgumentError(f"{where}expected sequences of one common length, got lengths {sorted(lengths)[:5]}")
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
        raise ArgumentError(f"x: expected a one-hot array of shape (N, 4, L) or (4, L), got shape {x.shape}")
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
        raise ArgumentError(f"names: expected one name per sequence ({len(seqs)}), got {len(names)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for name, s in zip(names, seqs):
            f.write(f">{name}\n{s}\n")
    return path


def read_fasta(path: str | Path) -> tuple[list[str], list[str]]:
    """Read a FASTA file into (names, sequences)."""
    path = existing_file(path, "FASTA file")
    names, seqs = [], []
    try:
        with open(path) as f:
            for n, line in enumerate(f, start=1):
                line = line.strip()
                if line.startswith(">"):
                    names.append(line[1:])
                    seqs.append("")
                elif line:
                    if not seqs:
                        raise FileFormatError(f"FASTA file {str(path)!r}: expected a '>' header first, got sequence "
                                              f"on line {n}")
                    seqs[-1] += line
    except UnicodeDecodeError:
        raise FileFormatError(f"FASTA file {str(path)!r}: expected a text file, got bytes that are not text") from None
    return names, seqs


def load_inputs(source: str | Path | np.ndarray) -> np.ndarray:
    """One-hot inputs (N, 4, L) from an array, a ``.npy``/``.npz`` file or a FASTA file of equal-length sequences.

    FASTA letters outside A, C, G, T, N (any case) are an error naming the file, the sequence and the letter.
    """
    if isinstance(source, np.ndarray):
        return source
    path = existing_file(source, "inputs file")
    if path.suffix in (".npy", ".npz"):
        try:
            data = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise FileFormatError(f"inputs file {str(path)!r}: expected a numpy {path.suffix} file, got one numpy "
                                  f"cannot read ({err})") from None
        if path.suffix == ".npy":
            return data
        if not data.files:
            raise FileFormatError(f"inputs file {str(path)!r}: expected an array in the .npz file, got none")
        return data[data.files[0]]
    names, seqs = read_fasta(path)
    if not seqs:
        raise FileFormatError(f"inputs file {str(path)!r}: expected FASTA sequences, got none")
    lengths = sorted({len(s) for s in seqs})
    if len(lengths) != 1:
        raise FileFormatError(f"inputs file {str(path)!r}: expected FASTA sequences of one common length, got "
                              f"lengths {lengths[:5]}")
    try:
        return one_hot(seqs, where=f"inputs file {str(path)!r}: ")
    except ArgumentError as err:  # the letters came from the file: a file error, not an argument error
        raise FileFormatError(str(err)) from None


def slot_starts(rng: np.random.Generator, n: int, length: int, width: int, slots: int) -> np.ndarray:
    """Where ``slots`` non-overlapping places of ``width`` bp start in each of ``n`` sequences of ``length`` bp.

    Each sequence's layout is uniform among the non-overlapping ones (sorted offsets into the slack), and its
    places are listed in random order, so place 0 is anywhere in the sequence. Returns (n, slots) int64.
    """
    slack = length - slots * width
    offsets = np.sort(rng.integers(0, slack + 1, (n, slots)), axis=1)
    starts = offsets + width * np.arange(slots)[None, :]
    return np.take_along_axis(starts, rng.permuted(np.tile(np.arange(slots), (n, 1)), axis=1), axis=1)
