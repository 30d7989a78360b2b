"""The random contexts every statistic is averaged over: background sequences, word slots, the layer position of
each channel, and the coalition of groups present in each context."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ModelError
from .network import random_sequences
from .options import Options


@dataclass(frozen=True)
class Contexts:
    """n random contexts.

    Attributes
    ----------
    sequences : (n, 4, L) float tensor
        Each context's background sequence.
    starts : (n, slots) int64 tensor
        Where each context's non-overlapping word slots start, in random order: slot 0 takes player i's group
        word, slot 1 player j's, slots 2 on the coalition's.
    positions : (n, K) int64 tensor
        The layer position at which each channel is switched on.
    coin : (n, G) bool tensor
        Which groups are present in each context if they are in the coalition (probability ``context_on``).
    """

    sequences: torch.Tensor
    starts: torch.Tensor
    positions: torch.Tensor
    coin: torch.Tensor

    @property
    def n(self) -> int:
        return len(self.sequences)


def draw_backgrounds(rng: np.random.Generator, opts: Options) -> torch.Tensor:
    """``opts.backgrounds`` background sequences (N, 4, L): uniform random, or dinucleotide shuffles of sequences
    of ``opts.inputs`` picked at random (with replacement when there are fewer than N)."""
    if opts.inputs is None:
        return random_sequences(rng, opts.backgrounds, opts.length)
    from tangermeme.ersatz import dinucleotide_shuffle

    pick = rng.choice(len(opts.inputs), size=opts.backgrounds, replace=len(opts.inputs) < opts.backgrounds)
    return dinucleotide_shuffle(opts.inputs[pick], n=1, random_state=opts.seed)[:, 0]


def draw_contexts(rng: np.random.Generator, opts: Options, backgrounds: torch.Tensor, *, width: int, channels: int,
                  positions: int, groups: int) -> Contexts:
    """``opts.contexts`` contexts on ``backgrounds`` (N, 4, L), with L // ``width`` slots for words of that width,
    a position of the layer's ``positions`` for each of its ``channels``, and a coin for each of ``groups``.

    Each context takes a background at random: all different when there are as many backgrounds as contexts,
    else drawn with replacement.
    """
    n, length = opts.contexts, opts.length
    n_slots = length // width
    if n_slots < 2:
        raise ModelError(f"input_shape: expected an input of at least {2 * width} bp, so that two {width}-bp motif "
                         f"words fit side by side, got {length} bp")
    ctx_bg = torch.from_numpy(rng.choice(len(backgrounds), n, replace=n > len(backgrounds)))
    slack = length - n_slots * width
    offsets = np.sort(rng.integers(0, slack + 1, (n, n_slots)), axis=1)  # uniform non-overlapping layouts
    starts = offsets + width * np.arange(n_slots)[None, :]
    starts = np.take_along_axis(starts, rng.permuted(np.tile(np.arange(n_slots), (n, 1)), axis=1), axis=1)
    return Contexts(sequences=backgrounds[ctx_bg], starts=torch.from_numpy(starts),
                    positions=torch.from_numpy(rng.integers(0, positions, (n, channels))),
                    coin=torch.from_numpy(rng.random((n, groups)) < opts.context_on))


def choose_coalition(contexts: Contexts, strength: np.ndarray, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """The coalition: the ``size`` groups of largest ``strength`` (C, G) over classes, each present in a context
    where its coin says so.

    Returns
    -------
    present : (n, G) bool tensor
        The coalition's groups present in each context.
    chosen : (size,) int
        The coalition's groups, strongest first.
    """
    chosen = np.argsort(-strength.max(0), kind="stable")[:size]
    present = torch.zeros(contexts.coin.shape, dtype=torch.bool)
    present[:, chosen] = contexts.coin[:, chosen]
    return present, chosen
