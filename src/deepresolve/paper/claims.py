"""The paper's claims about the synthetic sets, as checks on a result.

Which planted k-mer each first-layer filter detects (:func:`filter_kmer_scores`, :func:`kmer_channel_names`), and
the claims of the paper's synthetic experiments (:func:`set_one_claims`, :func:`set_two_claims`). Shared by the
demo, the tests and ``benchmarks/synthetic_claims.py``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import nn

from .._model import find_layer
from ..errors import ArgumentError
from .datasets import ALPHABET, SET_ONE_MOTIFS, SET_TWO_CLASSES

# ----------------------------------------------------------------------------------------------
# Which planted k-mer does a filter detect?


def filter_kmer_scores(weights: np.ndarray, kmers: Sequence[str], min_overlap: int = 4) -> np.ndarray:
    """How well each conv filter recognises each k-mer: the share of the filter's best score it reaches.

    The filter W (4, w) is read as a position weight matrix of log-odds-like scores, centred
    per column (a random base scores 0 on average). A k-mer slid along the filter (it may
    overhang by up to ``len(kmer) - min_overlap`` bases) scores the centred weights of its bases
    over the columns it covers; the columns it does not cover count as background (0). The best
    offset's score is divided by the filter's best possible score:

        score = max_o sum_{covered j} (W[kmer_j, j] - mean_b W[b, j]) / sum_j (max_b W[b, j] - mean_b W[b, j])

    1 means the k-mer is the filter's preferred word and the filter has no information outside
    it; 0 is what a random word scores on average; a filter that needs bases beyond the k-mer
    (flanks, or the motif twice) scores below 1 even for its own motif.

    Parameters
    ----------
    weights : (K, 4, w) array
        Convolution weights (A, C, G, T input channels).
    kmers : sequence of str
    min_overlap : int
        Fewest k-mer bases that must fall inside the filter (k-mers shorter than this must fit whole).

    Returns
    -------
    (K, M) float array, at most 1.
    """
    W = np.asarray(weights, dtype=np.float64)
    if W.ndim != 3 or W.shape[1] != 4:
        raise ArgumentError(f"weights: expected shape (K, 4, w), got {W.shape}")
    K, _, w = W.shape
    C = W - W.mean(axis=1, keepdims=True)  # centred: a uniformly random base scores 0
    best = C.max(axis=1).sum(axis=1)  # (K,)
    best = np.where(best > 0, best, np.inf)
    out = np.full((K, len(kmers)), -np.inf)
    for m, kmer in enumerate(kmers):
        if not isinstance(kmer, str) or not kmer or set(kmer) - set(ALPHABET):
            raise ArgumentError(f"kmers: expected non-empty strings over ACGT, got {kmer!r}")
        idx = np.array([ALPHABET.index(c) for c in kmer])
        need = min(min_overlap, len(kmer))
        for o in range(need - len(kmer), w - need + 1):
            j = np.arange(len(kmer))
            inside = (o + j >= 0) & (o + j < w)
            out[:, m] = np.maximum(out[:, m], C[:, idx[inside], o + j[inside]].sum(axis=1) / best)
    return out


def kmer_channel_names(weights: np.ndarray, kmers: Sequence[str], threshold: float = 0.6) -> list[str]:
    """Name each filter after its best-matching k-mer (:func:`filter_kmer_scores` >= ``threshold``).

    Names are made unique per channel by a suffix with the channel index, e.g. ``"CAGGTC#3"``; a filter that
    matches no k-mer is named by its index, e.g. ``"ch13"``.
    """
    scores = filter_kmer_scores(weights, kmers)
    names = []
    for k, row in enumerate(scores):
        best = int(np.argmax(row))
        names.append(f"{kmers[best]}#{k}" if row[best] >= threshold else f"ch{k}")
    return names


def motif_of(name: str) -> str:
    """The k-mer part of a channel name made by :func:`kmer_channel_names` (``"-"`` when none)."""
    kmer, sep, _ = name.partition("#")
    return kmer if sep else "-"


def conv_weights(model: nn.Module, layer: str = "conv1") -> np.ndarray:
    """The (K, 4, w) weights of a conv layer, as numpy."""
    mod = find_layer(model, layer)
    if not isinstance(mod, nn.Conv1d):
        raise ArgumentError(f"layer: expected the name of a Conv1d, got {layer!r}, a {type(mod).__name__}")
    return mod.weight.detach().cpu().numpy()


# ----------------------------------------------------------------------------------------------
# The paper's claims, as measurable properties of a Result


def set_one_claims(res, motifs: Sequence[str], top: int = 3) -> dict:
    """Measure the set I claims of the paper (Fig. 2) on a single-class result.

    Parameters
    ----------
    res : Result
        DeepResolve on a set I model (its first class is analysed).
    motifs : sequence of str, length K
        Motif of each channel (``"-"`` for none), e.g. ``[motif_of(n) for n in kmer_channel_names(...)]``.
    top : int
        How many top non-additive channels are considered.

    Returns
    -------
    dict with the measured figures and one bool per claim:

    ``bic_gt1``
        BIC chooses more than one mixture component.
    ``xor_nonadditive``
        The ``top`` non-additive channels with the largest |OFIV| all match GCTCAT or CGCTTG,
        and both motifs are among them.
    ``xor_opposite``
        The GCTCAT and CGCTTG channels with the largest |OFIV| have FIVs of opposite sign in
        more than half of the restarts with non-zero weight.
    ``and_additive_positive``
        The two additive channels with the largest positive OFIV both match CAGGTC.
    """
    i = 0
    motifs = list(motifs)
    if len(motifs) != res.n_channels:
        raise ArgumentError(f"motifs: expected one motif per channel ({res.n_channels}), got {len(motifs)}")
    ofiv, na, fivs = res.ofiv[i], res.non_additive[i], res.fivs[i]
    and_m, xor_a, xor_b = SET_ONE_MOTIFS
    top_na = [motifs[k] for k in np.argsort(-np.abs(ofiv)) if na[k]][:top]
    add_pos = [k for k in np.argsort(-ofiv) if not na[k] and ofiv[k] > 0][:2]
    top_add = [motifs[k] for k in add_pos]
    live = res.weights[i] > 0

    def best_channel(m: str) -> int | None:
        ks = [k for k in range(len(motifs)) if motifs[k] == m]
        return max(ks, key=lambda k: abs(ofiv[k])) if ks else None

    def opposite(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.sign(a[live]) * np.sign(b[live]) < 0)) if live.any() else 0.0

    ka, kb = best_channel(xor_a), best_channel(xor_b)
    opp = opposite(fivs[:, ka], fivs[:, kb]) if ka is not None and kb is not None else float("nan")
    # The same on motif level (FIVs summed over every channel of a motif): a figure, not a claim.
    sa = fivs[:, [k for k in range(len(motifs)) if motifs[k] == xor_a]].sum(axis=1)
    sb = fivs[:, [k for k in range(len(motifs)) if motifs[k] == xor_b]].sum(axis=1)
    il = res.inconsistency[i]
    il_xor = max((il[k] for k in range(len(motifs)) if motifs[k] in (xor_a, xor_b)), default=np.nan)
    il_and = max((il[k] for k in range(len(motifs)) if motifs[k] == and_m), default=np.nan)
    return {
        "n_components": int(res.n_components[i]),
        # > 1 when some XOR channel is more inconsistent than every CAGGTC channel (what the claims need)
        "il_ratio_xor_to_and": float(il_xor / il_and) if il_and > 0 else float("nan"),
        "top_nonadditive": top_na,
        "top_additive_positive": top_add,
        "opposite_fraction": opp,
        "opposite_fraction_motif_sum": opposite(sa, sb),
        "n_positive_ofiv": int((ofiv > 0).sum()),
        "top_ofiv": [motifs[k] for k in np.argsort(-np.abs(ofiv))[:5]],
        "bic_gt1": bool(res.n_components[i] > 1),
        "xor_nonadditive": bool(top_na) and set(top_na) <= {xor_a, xor_b} and {xor_a, xor_b} <= set(top_na),
        "xor_opposite": bool(opp > 0.5),
        "and_additive_positive": len(top_add) == 2 and all(m == and_m for m in top_add),
    }


def set_two_claims(res, motifs: Sequence[str], weight_cos: np.ndarray, ofiv_corr: np.ndarray,
                   similarity: np.ndarray, top: int = 3) -> dict:
    """Measure the set II claims (Fig. 4) on a four-class result.

    ``bic_one`` (one mixture component for every class), ``own_motifs`` (each class's ``top``
    channels with the largest positive OFIV all match one of its own motifs; ``own_motifs_top2``
    the same for the first two; whether they cover
    both motifs is reported as ``covers_both``, a figure), ``negatives`` (every class has
    negative OFIV terms), ``similarity_separates`` (the OFIV+ similarity puts the pairs (1,2),
    (1,3), (2,3) above every pair with class 4), and the same separation test for the last-layer
    weight cosine and the full-OFIV correlation (the paper says these two fail it).
    """
    motifs = list(motifs)
    if len(motifs) != res.n_channels:
        raise ArgumentError(f"motifs: expected one motif per channel ({res.n_channels}), got {len(motifs)}")
    own, own2, covers, tops = [], [], [], []
    for c, wanted in enumerate(SET_TWO_CLASSES):
        pos = [k for k in np.argsort(-res.ofiv[c]) if res.ofiv[c, k] > 0][:top]
        got = [motifs[k] for k in pos]
        tops.append(got)
        own.append(len(got) == top and set(got) <= set(wanted))
        own2.append(len(got) >= 2 and set(got[:2]) <= set(wanted))
        covers.append(set(wanted) <= set(got))

    def separates(M: np.ndarray) -> bool:
        shared = [M[0, 1], M[0, 2], M[1, 2]]
        with4 = [M[0, 3], M[1, 3], M[2, 3]]
        return bool(min(shared) > max(with4))

    return {
        "n_components": res.n_components.tolist(),
        "own_motifs_per_class": own,
        "top_positive": tops,
        "covers_both": covers,
        "bic_one": bool((res.n_components == 1).all()),
        "own_motifs": bool(all(own)),
        "own_motifs_top2": bool(all(own2)),
        "negatives": bool((res.ofiv < 0).any(axis=1).all()),
        "similarity_separates": separates(similarity),
        "weight_cosine_separates": separates(weight_cos),
        "ofiv_corr_separates": separates(ofiv_corr),
    }
