"""Synthetic set III: many classes that share JASPAR motifs by design, the known answer for a DeepSEA-scale analysis.

The paper's DeepSEA experiment (919 classes, Figs 7-9) has no ground truth. Set III scales synthetic set II up to
a DeepSEA-like setting whose answer is known: ``n_groups`` designed groups of classes, each class defined by two or
three of 30 JASPAR motifs, every sequence carrying the motifs of exactly one class (labels never co-occur, so label
correlation cannot see which classes share motifs). A method that recovers what the network learned should find

- the classes' motif overlap: the Jaccard index of their motif sets (:func:`motif_jaccard`), and
- the designed groups: classes of one group share its two core motifs.

Design (:func:`set_three_design`). The 30 motifs are CORE vertebrate JASPAR 2024 matrices of 8-12 bp with at least
11 bits of information, of distinct TF families, chosen greedily (sharpest first) so that no two are Tomtom-similar
(p > 0.05), and frozen in :data:`SET_THREE_JASPAR`. Group g owns a core pair of motifs (the groups' pairs are
disjoint). Its classes are the core pair alone and the core pair plus one extra motif, the extras drawn without
replacement from the 28 motifs outside the pair (so classes of different groups share a motif when one's extra is
in the other's set). No two classes have the same motif set.

Sequences (:func:`synthetic_set_three`). Uniform background; each motif of the class is a fresh instance sampled
column by column from its PWM, planted on the forward strand at a uniformly random non-overlapping position.
Chance PWM matches in the background are not removed (at 200 bp and >= 11 bits per motif they rarely complete
another class's set of two or three motifs). Class sizes vary (uniform between 0.75 and 1.25 times
``n_per_class``), as positives do between DeepSEA's outputs; with equal sizes label correlation would be a constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import adjusted_rand_score
from torch import nn

from .._checks import check_choice
from .._model import frozen_copy
from ..errors import ArgumentError
from ..similarity import cluster_classes
from ..split import capture
from .datasets import SyntheticData

#: JASPAR 2024 CORE vertebrate matrices of set III (matrix ids), see the module docstring for how they were chosen.
SET_THREE_JASPAR = (
    "MA0796.1", "MA0871.3", "MA1489.1", "MA1522.2", "MA0655.1", "MA0141.4", "MA0466.4", "MA0732.2", "MA0156.4",
    "MA0029.2", "MA0137.4", "MA0795.1", "MA0756.3", "MA1730.2", "MA0773.1", "MA1542.2", "MA1547.2", "MA1548.2",
    "MA0789.1", "MA0611.3", "MA1503.2", "MA0778.2", "MA0817.2", "MA0808.1", "MA0095.4", "MA0794.1", "MA0647.2",
    "MA1709.2", "MA1604.2", "MA0596.1",
)


@lru_cache(maxsize=1)
def _set_three_pwms() -> tuple[tuple[str, np.ndarray], ...]:
    from ..motifs import jaspar_motifs

    db = {name.split()[0]: (name, pwm)
          for name, pwm in jaspar_motifs("JASPAR2024", collection="CORE", tax_group="vertebrates").items()}
    missing = [m for m in SET_THREE_JASPAR if m not in db]
    if missing:  # a pyjaspar without these matrices: nothing else would reproduce the set
        raise RuntimeError(f"pyjaspar's JASPAR2024 lacks set III matrices {missing}")
    return tuple(db[m] for m in SET_THREE_JASPAR)


def set_three_motifs() -> dict[str, np.ndarray]:
    """The 30 motifs of set III: ``"<matrix id> <name>"`` -> (4, width) PWM (A, C, G, T rows, columns sum to 1)."""
    return {name: pwm.copy() for name, pwm in _set_three_pwms()}


@dataclass
class SetThreeDesign:
    """Which motifs define which class, and the designed groups.

    Attributes
    ----------
    motifs : list of str, length M
        Motif names (``"<matrix id> <name>"``).
    class_motifs : list of tuple of int, length C
        Indices into ``motifs`` of each class's motifs (the core pair first).
    groups : (C,) int
        Designed group of each class, 0 .. n_groups - 1.
    """

    motifs: list[str]
    class_motifs: list[tuple[int, ...]]
    groups: np.ndarray

    @property
    def class_names(self) -> list[str]:
        """``"g<group>:<motif>+<motif>[+<motif>]"`` with the TF names."""
        tf = [m.split(" ", 1)[-1] for m in self.motifs]
        return [f"g{g}:" + "+".join(tf[i] for i in ms) for g, ms in zip(self.groups, self.class_motifs)]

    def membership(self) -> np.ndarray:
        """(C, M) bool: class c is defined by motif m."""
        out = np.zeros((len(self.class_motifs), len(self.motifs)), bool)
        for c, ms in enumerate(self.class_motifs):
            out[c, list(ms)] = True
        return out


def set_three_design(n_groups: int = 12, classes_per_group: int = 10, *, seed: int = 0) -> SetThreeDesign:
    """The classes of set III: ``n_groups`` groups of ``classes_per_group`` classes over the 30 motifs.

    Group g owns motifs 2g and 2g + 1 (its core pair); its first class is the pair alone, the others add one extra
    motif each, drawn without replacement from the motifs outside the pair.

    Parameters
    ----------
    n_groups : int
        1 to 15 (the 30 motifs make 15 disjoint pairs).
    classes_per_group : int
        1 to 29 (the pair alone plus up to 28 extras).
    seed : int
        Drives the choice of extras.
    """
    names = [name for name, _ in _set_three_pwms()]
    for arg, value, top in (("n_groups", n_groups, len(names) // 2),
                            ("classes_per_group", classes_per_group, len(names) - 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= top:
            raise ArgumentError(f"{arg}: expected an int in 1..{top}, got {value!r}")
    rng = np.random.default_rng(seed)
    class_motifs, groups = [], []
    for g in range(n_groups):
        core = (2 * g, 2 * g + 1)
        others = [m for m in range(len(names)) if m not in core]
        extras = rng.choice(others, size=classes_per_group - 1, replace=False)
        class_motifs.append(core)
        class_motifs += [(*core, int(e)) for e in extras]
        groups += [g] * classes_per_group
    return SetThreeDesign(names, class_motifs, np.asarray(groups))


def motif_jaccard(design: SetThreeDesign) -> np.ndarray:
    """True motif overlap of every class pair: |motifs_i & motifs_j| / |motifs_i | motifs_j|, (C, C)."""
    m = design.membership().astype(np.float64)
    inter = m @ m.T
    union = m.sum(1)[:, None] + m.sum(1)[None, :] - inter
    return inter / union


def _sample_instances(rng: np.random.Generator, pwm: np.ndarray, n: int) -> np.ndarray:
    """(n, width) base codes drawn column by column from ``pwm`` (4, width)."""
    cdf = np.cumsum(pwm, axis=0)  # (4, width)
    u = rng.random((n, pwm.shape[1]))
    return np.minimum((u[:, None, :] > cdf[None]).sum(axis=1), 3)


def synthetic_set_three(design: SetThreeDesign | None = None, *, n_per_class: int = 200, length: int = 200,
                        seed: int = 0) -> SyntheticData:
    """Sequences of set III: each carries the motifs of exactly one class (see the module docstring).

    Parameters
    ----------
    design : SetThreeDesign, optional
        Default :func:`set_three_design` with its defaults (12 groups x 10 classes).
    n_per_class : int
        Mean sequences per class; each class gets a size drawn uniformly in [0.75, 1.25] x ``n_per_class``.
    length : int
        Sequence length (200 bp: DeepSEA's 1000 would only make a CPU run slower; three motifs of <= 12 bp fit).
    seed : int
        Drives class sizes, backgrounds, motif instances and positions.

    Returns
    -------
    SyntheticData with ``y`` (N, C) one 1 per row, ``present``/``positions`` (N, 30) for the planted motifs,
    ``motifs`` the motif names, ``params["class_motifs"]`` and ``params["groups"]`` the design.
    """
    design = set_three_design() if design is None else design
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 4:
        raise ArgumentError(f"n_per_class: expected an int >= 4, got {n_per_class!r}")
    pwms = [pwm for _, pwm in _set_three_pwms()]
    widest = max(sum(pwms[m].shape[1] for m in ms) for ms in design.class_motifs)
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < widest:
        raise ArgumentError(f"length: expected an int >= {widest} (the longest class's motifs side by side), "
                            f"got {length!r}")
    rng = np.random.default_rng(seed)
    C, M = len(design.class_motifs), len(design.motifs)
    sizes = rng.integers(int(0.75 * n_per_class), int(1.25 * n_per_class) + 1, size=C)
    cls = np.repeat(np.arange(C), sizes)
    N = len(cls)
    codes = rng.integers(0, 4, size=(N, length))
    present = np.zeros((N, M), bool)
    positions = np.full((N, M), -1)
    for c, ms in enumerate(design.class_motifs):
        rows = np.flatnonzero(cls == c)
        widths = np.array([pwms[m].shape[1] for m in ms])
        # Uniform non-overlapping placement: sorted offsets in the free length, motifs in a random order.
        offsets = np.sort(rng.integers(0, length - widths.sum() + 1, size=(len(rows), len(ms))), axis=1)
        order = np.argsort(rng.random((len(rows), len(ms))), axis=1)
        starts = offsets + np.concatenate([np.zeros((len(rows), 1), int), np.cumsum(widths[order], axis=1)[:, :-1]],
                                          axis=1)
        for k in range(len(ms)):
            motif_of_slot = np.asarray(ms)[order[:, k]]
            for j, m in enumerate(ms):
                sel = rows[motif_of_slot == m]
                at = starts[motif_of_slot == m, k]
                inst = _sample_instances(rng, pwms[m], len(sel))
                codes[sel[:, None], at[:, None] + np.arange(widths[j])] = inst
                present[sel, m] = True
                positions[sel, m] = at
    x = np.zeros((N, 4, length), np.float32)
    np.put_along_axis(x, codes[:, None, :], 1.0, axis=1)
    y = np.zeros((N, C), np.float32)
    y[np.arange(N), cls] = 1.0
    perm = rng.permutation(N)
    return SyntheticData(
        x=x[perm], y=y[perm], present=present[perm], positions=positions[perm], motifs=tuple(design.motifs),
        class_names=design.class_names, background=np.zeros(N, bool),
        params=dict(set="III", n_per_class=n_per_class, length=length, seed=seed,
                    class_motifs=[list(ms) for ms in design.class_motifs], groups=design.groups.tolist()),
    )


@dataclass
class Recovery:
    """How well a class-similarity matrix recovers set III's design.

    Attributes
    ----------
    spearman : float
        Spearman correlation between the similarity and the true motif Jaccard over all class pairs (i < j).
    ari : float
        Adjusted Rand index of the hierarchical clusters (average linkage on 1 - similarity, cut into as many
        clusters as designed groups) against the designed groups.
    """

    spearman: float
    ari: float


def recovery(similarity: np.ndarray, design: SetThreeDesign, *, method: str = "average") -> Recovery:
    """Score a (C, C) class similarity (OFIV+ similarity, label correlation, last-layer cosine ...) on the design."""
    a = np.asarray(similarity, dtype=np.float64)
    C = len(design.class_motifs)
    if a.shape != (C, C):
        raise ArgumentError(f"similarity: expected ({C}, {C}) for this design's {C} classes, got shape {a.shape}")
    iu = np.triu_indices(C, k=1)
    rho = spearmanr(a[iu], motif_jaccard(design)[iu]).statistic
    n_groups = len(np.unique(design.groups))
    labels = cluster_classes(a, method=method, n_clusters=n_groups).labels
    return Recovery(float(rho), float(adjusted_rand_score(design.groups, labels)))


def planted_motif_response(model: nn.Module, layer: str, data: SyntheticData, *, at: str = "input",
                           batch_size: int = 512) -> np.ndarray:
    """How strongly each channel of a layer responds to each planted motif: (K, M) standardised effects.

    For channel k, its activation on a sequence is the maximum over positions of the layer's map (``at`` its
    input or output); the effect of motif m is the mean activation on the sequences carrying m minus that on
    the others, divided by the channel's standard deviation over all sequences (0 for a constant channel).
    The known answer names channels by motif (``data.motifs[effect[k].argmax()]``), e.g. to read a class
    difference map (:func:`deepresolve.viz.plot.difference`) as shared and distinct motif channels.

    Parameters
    ----------
    model : nn.Module
        Takes ``data.x`` (N, 4, L).
    layer : str
        Module name; at="input" gives the input of the last convolution, the layer set III analyses.
    data : SyntheticData
        With ``present`` (N, M), e.g. :func:`synthetic_set_three`.
    """
    check_choice(at, "at", ("input", "output"))
    present = np.asarray(data.present, dtype=bool)
    if present.ndim != 2 or len(present) != len(data.x) or not present.any(axis=0).all() or present.all(axis=0).any():
        raise ArgumentError(f"data.present: expected an (N, M) bool matrix with every motif on some but not all of "
                            f"the N = {len(data.x)} sequences, got shape {present.shape}")
    net = frozen_copy(model)
    with torch.no_grad():
        acts = torch.cat([capture(net, layer, torch.as_tensor(data.x[i:i + batch_size]), at=at).flatten(2).amax(2)
                          for i in range(0, len(data.x), batch_size)]).double().numpy()  # (N, K)
    sd = acts.std(axis=0)
    p = present.astype(np.float64)
    with_m = acts.T @ p / p.sum(axis=0)
    without = acts.T @ (1 - p) / (1 - p).sum(axis=0)
    return np.where(sd[:, None] > 0, (with_m - without) / np.where(sd > 0, sd, 1.0)[:, None], 0.0)
