"""The random contexts every statistic is averaged over: background sequences, word slots, the layer position of
each channel, and the coalition of groups present in each context.

What a context holds does not depend on how many motif groups were found, nor on their order: the slot layouts
and channel positions come from a stream of their own (keyed by the seed), and each group's coin and slot
priority from a stream keyed by the seed and the group's word. Why: a motif found as three groups (shifted or
mismatched copies) used to reshuffle the draws of every context, so adding a copy changed every other pair.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ModelError
from ..io.sequences import slot_starts
from .network import one_hot_bases, random_sequences
from .options import Options

#: Keys of the streams under the seed: the contexts' layouts and positions, and each group's coins.
_LAYOUT_STREAM, _GROUP_STREAM = 1, 2


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
    priority : (n, G) float64 tensor
        The order in which a context's coalition groups take the slots from 2 on (lowest first).
    """

    sequences: torch.Tensor
    starts: torch.Tensor
    positions: torch.Tensor
    coin: torch.Tensor
    priority: torch.Tensor

    @property
    def n(self) -> int:
        return len(self.sequences)


def draw_backgrounds(rng: np.random.Generator, opts: Options) -> torch.Tensor:
    """``opts.backgrounds`` background sequences (N, 4, L) of the model ``opts.background``.

    "uniform": i.i.d. uniform bases. "gc": i.i.d. bases with GC fraction ``opts.gc`` (C and G ``gc / 2`` each, A and
    T ``(1 - gc) / 2``). "shuffle": dinucleotide shuffles (tangermeme's) of sequences of ``opts.inputs`` picked at
    random (with replacement when there are fewer than N). "markov": samples of the order-k Markov chain
    (k = ``opts.markov_order``) fitted on ``opts.inputs`` (:func:`fit_markov`, :func:`sample_markov`). Every draw
    comes from ``rng`` (the shuffles from ``opts.seed``).
    """
    n, length = opts.backgrounds, opts.length
    if opts.background == "uniform":
        return random_sequences(rng, n, length)
    if opts.background == "gc":
        at, gc = (1 - opts.gc) / 2, opts.gc / 2
        return one_hot_bases(rng.choice(4, (n, length), p=[at, gc, gc, at]))
    if opts.background == "markov":
        initial, transition = fit_markov(opts.inputs.argmax(1).numpy(), opts.markov_order)
        return one_hot_bases(sample_markov(rng, initial, transition, n, length))
    from tangermeme.ersatz import dinucleotide_shuffle

    pick = rng.choice(len(opts.inputs), size=n, replace=len(opts.inputs) < n)
    return dinucleotide_shuffle(opts.inputs[pick], n=1, random_state=opts.seed)[:, 0]


def background_params(opts: Options) -> dict[str, str | float | int]:
    """What the result records of the background model: its name, and ``gc`` or ``markov_order`` where it has one."""
    extra = {"gc": {"gc": opts.gc}, "markov": {"markov_order": opts.markov_order}}.get(opts.background, {})
    return {"background": opts.background, **extra}


def fit_markov(bases: np.ndarray, order: int, pseudocount: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The order-k Markov chain of sequences, from their (k+1)-mer counts.

    Parameters
    ----------
    bases : (N, L) int
        Base indices 0..3 (A, C, G, T), L > ``order``.
    order : int
        k: each base depends on the k bases before it.
    pseudocount : float
        Added to the count of every (k+1)-mer, so that one the sequences lack keeps a small probability.

    Returns
    -------
    initial : (4^k,) float64
        Distribution of a sequence's first k bases (the k-mers' frequencies, pseudocounts included); k-mers are
        indexed by their bases in base 4, the first base most significant.
    transition : (4^k, 4) float64
        Distribution of the next base after each k-mer.
    """
    N, L = bases.shape
    codes = np.zeros((N, L - order), dtype=np.int64)
    for j in range(order + 1):  # the (k+1)-mer starting at each position, in base 4
        codes = codes * 4 + bases[:, j:L - order + j]
    counts = np.bincount(codes.ravel(), minlength=4 ** (order + 1)).reshape(4 ** order, 4) + pseudocount
    return counts.sum(1) / counts.sum(), counts / counts.sum(1, keepdims=True)


def sample_markov(rng: np.random.Generator, initial: np.ndarray, transition: np.ndarray, n: int,
                  length: int) -> np.ndarray:
    """n sequences of ``length`` base indices (n, length) int64 from the chain of :func:`fit_markov`: the first k
    bases from ``initial`` (4^k,), each next one from ``transition`` (4^k, 4) given the k bases before it."""
    states = len(initial)
    order = (states.bit_length() - 1) // 2  # states = 4^k
    state = np.minimum(np.searchsorted(np.cumsum(initial), rng.random(n), side="right"), states - 1)
    out = np.empty((n, length), dtype=np.int64)
    for j in range(min(order, length)):  # the first k bases are the digits of the initial k-mer
        out[:, j] = state // 4 ** (order - 1 - j) % 4
    cumulative = np.cumsum(transition, axis=1)
    for j in range(order, length):
        base = np.minimum((cumulative[state] <= rng.random(n)[:, None]).sum(1), 3)
        out[:, j] = base
        state = (state * 4 + base) % states
    return out


def group_draws(seed: int, words: np.ndarray, n: int, context_on: float) -> tuple[np.ndarray, np.ndarray]:
    """Each group's coins and slot priorities in n contexts, from a stream keyed by ``seed`` and the group's word.

    Parameters
    ----------
    seed : int
    words : (G, 4, w) float
        The groups' words.
    n : int
        Contexts.
    context_on : float
        Probability of a coin being True.

    Returns
    -------
    coin : (n, G) bool
    priority : (n, G) float64 in [0, 1)
        A group's column depends only on ``seed`` and its word (context c's draws are the same for every n > c):
        not on the other groups, their number or their order.
    """
    coin, priority = np.zeros((n, len(words)), bool), np.zeros((n, len(words)))
    for g, word in enumerate(words):
        digest = hashlib.sha256(np.ascontiguousarray(word, dtype=np.float32).tobytes()).digest()
        stream = np.random.default_rng([seed, _GROUP_STREAM, *np.frombuffer(digest, dtype=np.uint32).tolist()])
        coin[:, g] = stream.random(n) < context_on
        priority[:, g] = stream.random(n)
    return coin, priority


def draw_contexts(opts: Options, backgrounds: torch.Tensor, *, width: int, channels: int, positions: int,
                  group_words: np.ndarray) -> Contexts:
    """``opts.contexts`` contexts on ``backgrounds`` (N, 4, L), with L // ``width`` slots for words of that width,
    a position of the layer's ``positions`` for each of its ``channels``, and a coin and a slot priority for each
    of the groups, whose words are ``group_words`` (G, 4, w) (:func:`group_draws`).

    Each context takes a background at random: all different when there are as many backgrounds as contexts,
    else drawn with replacement. The backgrounds, slot layouts and positions come from a stream keyed by
    ``opts.seed`` alone.
    """
    n, length = opts.contexts, opts.length
    n_slots = length // width
    if n_slots < 2:
        raise ModelError(f"input_shape: expected an input of at least {2 * width} bp, so that two {width}-bp motif "
                         f"words fit side by side, got {length} bp")
    rng = np.random.default_rng([opts.seed, _LAYOUT_STREAM])
    ctx_bg = torch.from_numpy(rng.choice(len(backgrounds), n, replace=n > len(backgrounds)))
    starts = slot_starts(rng, n, length, width, n_slots)
    coin, priority = group_draws(opts.seed, group_words, n, opts.context_on)
    return Contexts(sequences=backgrounds[ctx_bg], starts=torch.from_numpy(starts),
                    positions=torch.from_numpy(rng.integers(0, positions, (n, channels))),
                    coin=torch.from_numpy(coin), priority=torch.from_numpy(priority))


def choose_coalition(contexts: Contexts, strength: np.ndarray, size: int,
                     copies: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """The coalition: the ``size`` groups of largest ``strength`` (C, G) over classes that are distinct motifs (a
    group that ``copies`` (G, G) marks as a copy of one already chosen is passed over), each present in a context
    where its coin says so.

    Returns
    -------
    present : (n, G) bool tensor
        The coalition's groups present in each context.
    chosen : (m,) int
        The coalition's groups, strongest first; m <= ``size``.
    """
    chosen: list[int] = []
    for g in np.argsort(-strength.max(0, initial=-np.inf), kind="stable").tolist():
        if len(chosen) == size:
            break
        if not copies[g, chosen].any():
            chosen.append(g)
    present = torch.zeros(contexts.coin.shape, dtype=torch.bool)
    present[:, chosen] = contexts.coin[:, chosen]
    return present, np.array(chosen, dtype=int)
