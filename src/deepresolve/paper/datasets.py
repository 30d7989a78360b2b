"""Synthetic data sets of the DeepResolve paper.

Sequences are one-hot encoded as float32 arrays of shape (N, 4, L), rows in A, C, G, T order.

Set I (AND + XOR logic) and set II (four classes sharing motifs) follow Liu, Zeng & Gifford
(BMC Bioinformatics 2019), "Synthetic datasets". Where the paper is silent (sequence length,
how subsets of motifs are drawn, chance occurrences of the motifs in the background) the
choices are documented on the functions below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .._checks import check_int
from ..errors import ArgumentError
from ..io.sequences import ALPHABET, one_hot

#: Motifs of synthetic set I: the AND motif first, then the XOR pair.
SET_ONE_MOTIFS = ("CAGGTC", "GCTCAT", "CGCTTG")
#: Motifs of synthetic set II.
SET_TWO_MOTIFS = ("GATA", "CAGATG", "TCAT", "CGCTTG")
#: The motifs that define each class of set II (classes 1..4 of the paper, in order).
SET_TWO_CLASSES = (("GATA", "CAGATG"), ("TCAT", "CAGATG"), ("GATA", "TCAT"), ("CGCTTG",))


@dataclass
class SyntheticData:
    """A synthetic data set with its ground truth.

    Attributes
    ----------
    x : (N, 4, L) float32
        One-hot sequences (A, C, G, T rows).
    y : (N, C) float32
        0/1 labels, one column per class.
    present : (N, M) bool
        Whether motif m (``motifs[m]``) occurs in sequence n: planted, or by chance in a
        background sequence.
    positions : (N, M) int
        Start of the planted motif m in sequence n, -1 where it was not planted (always -1 in
        background sequences).
    motifs : tuple of str, length M
    class_names : list of str, length C
    background : (N,) bool
        Sequences drawn as plain uniform background (no planted motif).
    """

    x: np.ndarray
    y: np.ndarray
    present: np.ndarray
    positions: np.ndarray
    motifs: tuple[str, ...]
    class_names: list[str]
    background: np.ndarray
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray) -> "SyntheticData":
        """The sequences at ``index`` (any numpy index), with their ground truth."""
        return SyntheticData(
            self.x[index], self.y[index], self.present[index], self.positions[index],
            self.motifs, list(self.class_names), self.background[index], dict(self.params),
        )


# ----------------------------------------------------------------------------------------------
# Planting motifs


def _count(seq: str, motif: str) -> int:
    """Occurrences of ``motif`` in ``seq``, overlapping ones included."""
    n, start = 0, seq.find(motif)
    while start != -1:
        n += 1
        start = seq.find(motif, start + 1)
    return n


def _plant(rng: np.random.Generator, length: int, chosen: Sequence[str], all_motifs: Sequence[str],
           exclusive: bool) -> tuple[str, dict[str, int]]:
    """One background sequence with ``chosen`` motifs at random non-overlapping positions.

    With ``exclusive`` the sequence is redrawn until every motif of ``all_motifs`` occurs
    exactly as often as planted (once or never): chance occurrences in the background would
    otherwise make the label disagree with the sequence.
    """
    total = sum(len(m) for m in chosen)
    for _ in range(10_000):
        order = rng.permutation(len(chosen))
        # Uniform non-overlapping placement: sorted gaps in the free length, then motifs in order.
        offsets = np.sort(rng.integers(0, length - total + 1, size=len(chosen)))
        seq = list(ALPHABET[i] for i in rng.integers(0, 4, size=length))
        pos, used = {}, 0
        for off, j in zip(offsets, order):
            start = int(off) + used
            seq[start:start + len(chosen[j])] = chosen[j]
            pos[chosen[j]] = start
            used += len(chosen[j])
        s = "".join(seq)
        if not exclusive or all(_count(s, m) == (1 if m in pos else 0) for m in all_motifs):
            return s, pos
    raise RuntimeError(f"could not draw a sequence of length {length} carrying exactly {list(chosen)}")


def _random_background(rng: np.random.Generator, length: int, reject) -> str:
    for _ in range(10_000):
        s = "".join(ALPHABET[i] for i in rng.integers(0, 4, size=length))
        if not reject(s):
            return s
    raise RuntimeError("could not draw a random background sequence that satisfies the constraints")


def synthetic_set_one(n: int = 100_000, n_random: int = 20_000, length: int = 100, seed: int = 0,
                      exclusive: bool = True) -> SyntheticData:
    """Synthetic set I: AND + XOR logic over three motifs.

    Each of the ``n`` sequences carries a subset of CAGGTC, GCTCAT, CGCTTG at random
    non-overlapping positions; the subset's presence pattern is uniform over the 8 patterns so
    that every case of the logic is equally represented. The label is 1 exactly when CAGGTC is
    present and exactly one of GCTCAT / CGCTTG (CAGGTC AND (GCTCAT XOR CGCTTG)), so 2/8 of the
    planted sequences are positive. ``n_random`` uniformly random sequences labelled 0 are added
    (the paper's 20,000 "totally random" sequences).

    Parameters
    ----------
    n : int
        Planted sequences (paper: 100,000).
    n_random : int
        Extra uniformly random sequences, all labelled 0 (paper: 20,000).
    length : int
        Sequence length. The paper does not state it; 100 bp matches the paper's other
        synthetic-style inputs (101-bp TF sequences), leaves room for the three 6-mers at many
        positions, and keeps a 32-filter model cheap to train on a CPU.
    seed : int
    exclusive : bool
        Redraw backgrounds in which a motif occurs by chance (a planted sequence then contains
        each motif exactly when it was planted, and a random sequence never satisfies the rule),
        so the label is a function of the sequence. With False, chance occurrences are kept as
        in a naive generator (about 2 % of 100-bp sequences carry a given 6-mer by chance).

    Returns
    -------
    SyntheticData with ``y`` of shape (n + n_random, 1) and motifs ordered
    (CAGGTC, GCTCAT, CGCTTG).
    """
    n = check_int(n, "n", minimum=0)
    n_random = check_int(n_random, "n_random", minimum=0)
    length = check_int(length, "length", minimum=sum(len(m) for m in SET_ONE_MOTIFS))
    if n + n_random == 0:
        raise ArgumentError("n, n_random: expected at least one sequence in all, got n = n_random = 0")
    rng = np.random.default_rng(seed)
    motifs = SET_ONE_MOTIFS
    patterns = (np.arange(8)[:, None] >> np.arange(3)[None, :]) & 1  # the 8 presence patterns
    # Exactly balanced over the 8 patterns (then shuffled), not merely uniform in expectation.
    pattern_of = rng.permutation(np.resize(np.arange(8), n))
    seqs, present, positions = [], np.zeros((n + n_random, 3), bool), np.full((n + n_random, 3), -1)
    for i in range(n):
        p = patterns[pattern_of[i]].astype(bool)
        chosen = [m for m, keep in zip(motifs, p) if keep]
        s, pos = _plant(rng, length, chosen, motifs, exclusive)
        seqs.append(s)
        present[i] = p
        for j, m in enumerate(motifs):
            positions[i, j] = pos.get(m, -1)

    def satisfies_rule(s: str) -> bool:
        has = [m in s for m in motifs]
        return has[0] and (has[1] != has[2])

    for i in range(n_random):
        s = _random_background(rng, length, satisfies_rule if exclusive else (lambda s: False))
        seqs.append(s)
        present[n + i] = [m in s for m in motifs]  # chance occurrences are recorded, not planted
    y = (present[:, 0] & (present[:, 1] ^ present[:, 2])).astype(np.float32)[:, None]
    y[n:] = 0.0
    background = np.zeros(n + n_random, bool)
    background[n:] = True
    order = rng.permutation(n + n_random)
    return SyntheticData(
        x=one_hot(seqs)[order], y=y[order], present=present[order], positions=positions[order],
        motifs=motifs, class_names=["CAGGTC AND (GCTCAT XOR CGCTTG)"], background=background[order],
        params=dict(set="I", n=n, n_random=n_random, length=length, seed=seed, exclusive=exclusive),
    )


def synthetic_set_two(n_per_class: int = 10_000, length: int = 100, seed: int = 0,
                      exclusive: bool = True) -> SyntheticData:
    """Synthetic set II: four classes that share motifs, one class per sequence.

    Class 1 = GATA + CAGATG, class 2 = TCAT + CAGATG, class 3 = GATA + TCAT, class 4 = CGCTTG.
    Every sequence belongs to exactly one class, so the 0/1 label matrix (N, 4) has one 1 per
    row and the labels carry no information about which classes share features.

    Parameters
    ----------
    n_per_class : int
        Sequences per class (the paper does not give the size; 4 x 10,000 by default).
    length : int
        Sequence length (not given in the paper; 100 bp as for set I).
    seed : int
    exclusive : bool
        Redraw backgrounds in which one of the four motifs occurs by chance, so that each
        sequence contains exactly its class's motifs. Without it a 4-mer such as GATA occurs
        by chance in about a third of 100-bp sequences, which makes the classes overlap.

    Returns
    -------
    SyntheticData with ``y`` of shape (4 * n_per_class, 4) and motifs ordered
    (GATA, CAGATG, TCAT, CGCTTG).
    """
    n_per_class = check_int(n_per_class, "n_per_class", minimum=1)
    length = check_int(length, "length", minimum=10)
    rng = np.random.default_rng(seed)
    motifs = SET_TWO_MOTIFS
    N = 4 * n_per_class
    seqs, present, positions = [], np.zeros((N, 4), bool), np.full((N, 4), -1)
    y = np.zeros((N, 4), np.float32)
    cls_of = np.repeat(np.arange(4), n_per_class)
    for i, c in enumerate(cls_of):
        chosen = list(SET_TWO_CLASSES[c])
        s, pos = _plant(rng, length, chosen, motifs, exclusive)
        seqs.append(s)
        y[i, c] = 1.0
        for j, m in enumerate(motifs):
            present[i, j] = m in pos
            positions[i, j] = pos.get(m, -1)
    order = rng.permutation(N)
    return SyntheticData(
        x=one_hot(seqs)[order], y=y[order], present=present[order], positions=positions[order],
        motifs=motifs, class_names=["+".join(m) for m in SET_TWO_CLASSES], background=np.zeros(N, bool),
        params=dict(set="II", n_per_class=n_per_class, length=length, seed=seed, exclusive=exclusive),
    )


def planted_example(motifs: Sequence[str], length: int = 100, seed: int = 0,
                    all_motifs: Sequence[str] = SET_ONE_MOTIFS) -> np.ndarray:
    """One sequence (1, 4, L) carrying exactly ``motifs`` (and no other of ``all_motifs``)."""
    rng = np.random.default_rng(seed)
    unknown = [m for m in motifs if set(m) - set(ALPHABET)]
    if unknown:
        raise ArgumentError(f"motifs: expected strings over ACGT, got {unknown}")
    length = check_int(length, "length", minimum=sum(len(m) for m in motifs))
    s, _ = _plant(rng, length, list(motifs), list(dict.fromkeys([*all_motifs, *motifs])), True)
    return one_hot(s)


def demo_sizes(full: bool) -> dict:
    """Data and training sizes of the demo.

    ``full`` uses the paper's set I (100,000 planted + 20,000 random sequences of 100 bp).
    The quick default uses 40-bp sequences (12,000 + 2,400): with fewer positions for the dense
    layer to generalise over, the XOR logic is learned from far fewer sequences, so training
    takes seconds instead of minutes on two CPU cores.
    """
    if full:
        return dict(n=100_000, n_random=20_000, length=100, train=dict(lr=1e-3, batch_size=128, epochs=40, patience=6))
    return dict(n=12_000, n_random=2_400, length=40, train=dict(lr=3e-3, batch_size=64, epochs=30, patience=6))
