"""Input-space pairwise marginalisation: the interaction of two words as the second difference of the model's output
when they are written into the same background sequences (tangermeme's marginalisation, for pairs).

For every context (a background sequence with two non-overlapping places at random, :mod:`._players`) and every
pair of words i < j: v00 is the output on the background, v10 with word i written into the first place, v01 with j
in the second, v11 with both. The interaction is the mean over the contexts of ``v11 - v10 - v01 + v00`` on the
output scale, its p-value the two-sided one-sample t-test of the contexts' second differences against 0, and the
q-values Benjamini-Hochberg within each class. The truth table of each pair (the means of v00, v01, v10, v11) is
kept.

The words are written as given, on the forward strand: they are the players exactly as the caller gives them (a word
scan gives the orientation the network reads); a reverse complement to be tested is a word of its own.

Cost: ``n (1 + 2 G + P)`` forward passes for n contexts, G words and P = G (G - 1) / 2 pairs: v00 once per context,
v10 and v01 once per word and context (each shared by every pair of the word), v11 once per pair and context.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .._checks import Int, declare
from ..results import PairScores
from ._players import PARAMETERS, Scorer, all_pairs, draw_contexts, pair_scores, setup, t_test


@declare(contexts=Int(minimum=2), **PARAMETERS)
def marginal_interactions(
    model: nn.Module,
    words: np.ndarray | Sequence[str],
    *,
    input_shape: Sequence[int],
    classes: Sequence[int] | int | None = None,
    class_names: Sequence[str] | None = None,
    contexts: int = 128,
    backgrounds: str | float | np.ndarray | torch.Tensor = "uniform",
    scale: str = "auto",
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    verbose: bool = False,
    output: Any = None,
    channels_last: bool = False,
    fixed_inputs: dict | None = None,
) -> PairScores:
    """Pairwise interactions of words by input-space marginalisation (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        Takes one-hot (N, 4, L), returns (N, C_out) scores.
    words : (G, 4, w) one-hot, or a list of G DNA strings
        The players. An all-zero column (N in a string) keeps the background's base; strings of different
        lengths are padded with N on the right. Two of them must fit side by side in L.
    input_shape : (4, L)
    classes : int or sequence of int, optional
        Output indices (default all).
    class_names : sequence of str, optional
        Names of every output or of the chosen classes.
    contexts : int
        n, the background sequences (each with its two places) every pair is averaged over; at least 2 (the
        t-test).
    backgrounds : "uniform", float or (N, 4, L) one-hot
        The background sequences: uniform random bases; random with this GC fraction (0.4: G and C each 0.2);
        or these sequences (all different when N >= n, else drawn with replacement). Pass dinucleotide
        shuffles of real sequences (``tangermeme.ersatz.dinucleotide_shuffle``) to keep their composition
        without their motifs: a background that already holds a word makes its own contrast smaller.
    scale : {"auto", "probability", "logit"}
        The output scale of the interactions: "probability" is the sigmoid of each logit; "auto" chooses it for a
        model that ends in a sigmoid/softmax (the last module of an ``nn.Sequential``, or the last call of a
        ``torch.fx`` graph), as :func:`deepresolve.interactions` does, else the raw output.
    seed : int
        Drives every random choice: the backgrounds (or which given ones), the places and their order.
    batch_size : int, optional
        Sequences per forward pass (default 1024).
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    verbose : bool
        Print the number of forward passes before they run.
    output, channels_last, fixed_inputs
        Adapters for models as published, as in :func:`deepresolve.resolve` (:mod:`deepresolve.split.adapters`).

    Returns
    -------
    PairScores
        ``method="marginal"``; values, p-values, q-values (C, P) and truth tables (C, P, 2, 2) of every pair.
    """
    s = setup(model, words, input_shape=input_shape, classes=classes, class_names=class_names,
              backgrounds=backgrounds, scale=scale, slots=2, contexts=contexts, seed=seed, device=device,
              batch_size=batch_size, output=output, channels_last=channels_last, fixed_inputs=fixed_inputs)
    ctx = draw_contexts(np.random.default_rng(seed), s, contexts, slots=2)
    G = len(s.words)
    pairs = all_pairs(G)
    none = np.full(G, -1)
    # per context: the background, each word alone in place 0, each alone in place 1, every pair
    placed = np.concatenate([[[-1, -1]], np.stack([np.arange(G), none], 1), np.stack([none, np.arange(G)], 1),
                             pairs])
    if verbose:
        print(f"marginal_interactions: {G} words, {len(pairs)} pairs x {contexts} contexts = "
              f"{contexts * len(placed):,} forward passes", flush=True)
    v = Scorer(s, ctx)(np.repeat(np.arange(contexts), len(placed)), np.tile(placed, (contexts, 1)))
    v = v.reshape(contexts, len(placed), -1)  # (n, rows, C)
    v00, v11 = v[:, :1], v[:, 1 + 2 * G:]
    v10, v01 = v[:, 1:1 + G][:, pairs[:, 0]], v[:, 1 + G:1 + 2 * G][:, pairs[:, 1]]
    values, pvalues = t_test(v11 - v10 - v01 + v00, np.abs(v).max())  # (P, C)
    cells = np.stack([np.broadcast_to(v00, v11.shape), v01, v10, v11], -1).mean(0)  # (P, C, 4): t00 t01 t10 t11
    tables = cells.reshape(*cells.shape[:2], 2, 2).transpose(1, 0, 2, 3)
    return pair_scores(s, "marginal", values.T, pvalues.T, tables, {})
