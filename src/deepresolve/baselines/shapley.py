"""Shapley interactions of words (order 2, shapiq): the words are the players of a game whose value for a coalition
S is the mean model output over random contexts with the words of S written into them.

The game: n contexts, each a background sequence with one place per word at random (:mod:`._players`); v(S) is the
mean over the contexts of the output (on the run's scale) with word p written into place p for every p in S. The
pair values are shapiq's interaction index of order 2: "k-SII" or "SII" (the same pair values: k-SII's top order is
SII), "STII" (Shapley-Taylor) or "FSII" (faithful Shapley). With two words every index is the second difference
``v({i, j}) - v({i}) - v({j}) + v({})``, and the contexts are the marginalisation's for the same seed
(:func:`~.marginal.marginal_interactions`), so both give the same values.

Exact or estimated: G words make 2^G coalitions, each n forward passes. When 2^G <= ``budget``, every coalition is
evaluated and shapiq's ExactComputer gives the index. The index is linear in the game, so the index of the mean
game is the mean of the contexts' own indices: the p-value is the two-sided one-sample t-test of the contexts' values
against 0, as the marginalisation's, at the cost of n C ExactComputer runs (about 0.02 s each at 8 words and 0.6 s
at 12, one CPU thread). Beyond, a shapiq approximator (KernelSHAPIQ for k-SII and SII, SVARMIQ for STII,
RegressionFSII for FSII) estimates the index from ``budget`` coalitions, the same ones for every class (each is
evaluated once); the p-values and q-values are NaN then.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .._checks import Choice, Int, declare
from ..errors import ArgumentError
from ..results import PairScores
from ._players import PARAMETERS, Scorer, all_pairs, draw_contexts, pair_scores, setup, t_test

#: The interaction indices offered, and the shapiq approximator of each (by name) beyond the exact budget.
APPROXIMATORS = {"k-SII": "KernelSHAPIQ", "SII": "KernelSHAPIQ", "STII": "SVARMIQ", "FSII": "RegressionFSII"}


class CoalitionValues:
    """The outputs (k, n, C) of coalitions (k, G) bool of words written into the n contexts, each coalition
    evaluated once."""

    def __init__(self, scorer: Scorer, n: int):
        self.scorer, self.n = scorer, n
        self.cache: dict[bytes, np.ndarray] = {}
        self.last: tuple[bytes, np.ndarray] = (b"", np.empty(0))

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.asarray(coalitions, dtype=bool)
        whole = coalitions.tobytes()
        if whole == self.last[0]:  # shapiq asks for the same coalitions once per context and class
            return self.last[1]
        keys = [row.tobytes() for row in coalitions]
        new = [k for k in dict.fromkeys(keys) if k not in self.cache]
        if new:
            todo = np.frombuffer(b"".join(new), dtype=bool).reshape(len(new), -1)
            G = todo.shape[1]
            placed = np.where(todo, np.arange(G)[None, :], -1)  # word p in place p
            v = self.scorer(np.tile(np.arange(self.n), len(new)), np.repeat(placed, self.n, 0))
            for k, values in zip(new, v.reshape(len(new), self.n, -1)):
                self.cache[k] = values
        out = np.stack([self.cache[k] for k in keys])
        self.last = (whole, out)
        return out

    @property
    def largest(self) -> float:
        """The largest |output| evaluated."""
        return max(float(np.abs(v).max()) for v in self.cache.values())


def _per_context(values: CoalitionValues, G: int, index: str, n: int, C: int,
                 pairs: np.ndarray) -> np.ndarray:
    """The exact index of every context's own game, (n, P, C)."""
    from shapiq import ExactComputer

    out = np.empty((n, len(pairs), C))
    for c in range(C):
        for t in range(n):
            iv = ExactComputer(lambda coalitions, t=t, c=c: values(coalitions)[:, t, c], n_players=G)(index, order=2)
            out[t, :, c] = [iv[(int(i), int(j))] for i, j in pairs]
    return out


def _estimated(values: CoalitionValues, G: int, index: str, budget: int, seed: int, C: int,
               pairs: np.ndarray) -> np.ndarray:
    """The index of the mean game estimated from ``budget`` coalitions, (P, C)."""
    import shapiq

    out = np.empty((len(pairs), C))
    for c in range(C):
        kwargs = {} if index == "FSII" else {"index": index}  # RegressionFSII has no other index
        approximator = getattr(shapiq, APPROXIMATORS[index])(G, max_order=2, random_state=seed, **kwargs)
        iv = approximator.approximate(budget, lambda coalitions, c=c: values(coalitions)[:, :, c].mean(1))
        out[:, c] = [iv[(int(i), int(j))] for i, j in pairs]
    return out


@declare(contexts=Int(minimum=2), index=Choice(*APPROXIMATORS), budget=Int(minimum=1), **PARAMETERS)
def shapley_interactions(
    model: nn.Module,
    words: np.ndarray | Sequence[str],
    *,
    input_shape: Sequence[int],
    classes: Sequence[int] | int | None = None,
    class_names: Sequence[str] | None = None,
    contexts: int = 32,
    index: str = "k-SII",
    budget: int = 2 ** 12,
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
    """Pairwise Shapley interactions of words (shapiq; see the module docstring).

    Parameters
    ----------
    model : nn.Module
        Takes one-hot (N, 4, L), returns (N, C_out) scores.
    words : (G, 4, w) one-hot, or a list of G DNA strings
        The players, as in :func:`~.marginal.marginal_interactions`; all G must fit side by side in L.
    input_shape : (4, L)
    classes : int or sequence of int, optional
        Output indices (default all).
    class_names : sequence of str, optional
        Names of every output or of the chosen classes.
    contexts : int
        n, the contexts the game's values are averaged over; at least 2 (the t-test).
    index : {"k-SII", "SII", "STII", "FSII"}
        shapiq's interaction index (order 2).
    budget : int
        Most coalitions evaluated (n forward passes each): exact when 2^G <= budget (the default, 4096, up to 12
        words), else an estimate from ``budget`` coalitions, which must be at least the 1 + G + G (G - 1) / 2
        interactions estimated.
    backgrounds, scale, seed, batch_size, device, output, channels_last, fixed_inputs
        As in :func:`~.marginal.marginal_interactions`; ``seed`` also drives shapiq's sampling of coalitions.
    verbose : bool
        Print the number of coalitions and forward passes before they run.

    Returns
    -------
    PairScores
        ``method="shapley"``; ``params["exact"]`` says whether the values are exact (then with p-values) or
        estimated (p-values and q-values NaN); truth tables NaN.
    """
    G = len(words)
    exact = 2 ** G <= budget
    interactions = 1 + G + G * (G - 1) // 2
    if not exact and budget < interactions:
        raise ArgumentError(f"budget: expected at least {interactions} coalitions to estimate the interactions of "
                            f"{G} words (or 2^{G} = {2 ** G:,} for exact values), got {budget}")
    s = setup(model, words, input_shape=input_shape, classes=classes, class_names=class_names,
              backgrounds=backgrounds, scale=scale, slots=G, contexts=contexts, seed=seed, device=device,
              batch_size=batch_size, output=output, channels_last=channels_last, fixed_inputs=fixed_inputs)
    rng = np.random.default_rng(seed)
    ctx = draw_contexts(rng, s, contexts, slots=G)
    coalitions = 2 ** G if exact else budget
    if verbose:
        print(f"shapley_interactions: {G} words, {'all' if exact else 'up to'} {coalitions:,} coalitions x "
              f"{contexts} contexts = {coalitions * contexts:,} forward passes ({'exact' if exact else 'estimated'} "
              f"{index})", flush=True)
    values, pairs, C = CoalitionValues(Scorer(s, ctx), contexts), all_pairs(G), len(s.classes)
    if exact:
        mean, pvalues = t_test(_per_context(values, G, index, contexts, C, pairs), values.largest)
    else:
        mean = _estimated(values, G, index, budget, int(rng.integers(2 ** 31)), C, pairs)
        pvalues = np.full(mean.shape, np.nan)
    return pair_scores(s, "shapley", mean.T, pvalues.T, np.full((C, len(pairs), 2, 2), np.nan),
                       dict(index=index, budget=budget, exact=exact, coalitions=len(values.cache)))
