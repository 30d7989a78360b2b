"""The players of the analysis: the layer's K channels with their preferred words and on-levels, then its G motif
groups with the word each is switched on with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from torch import nn

from ..errors import ModelError
from .network import Network, layer_maps
from .options import Options
from .words import preferred_words, scan_words

#: Random sequences each preferred word is written into to measure the channels' responses to it.
WORD_BACKGROUNDS = 16


@dataclass(frozen=True)
class Players:
    """The K channels (players 0..K-1) and G motif groups (players K..K+G-1) of one analysis.

    Attributes
    ----------
    words : (K, 4, w) float32 one-hot
        Each channel's preferred word.
    how : str
        How the words and groups were found (``params["on_levels"]`` of the result).
    on_levels : (K,) float64
        Each channel's response to its own word: the mean over random sequences of its largest response.
    groups : (K,) int
        Motif group of each channel, -1 for none.
    group_words : (G, 4, w') float32 one-hot
        The word each group is switched on with.
    player_groups : list of K + G int arrays
        The groups each player belongs to (none, or one): a context's coalition leaves them out while the
        player is measured.
    copies : (G, G) bool
        ``copies[g, h]``: groups g and h are copies of one motif by what the network does with them (the diagonal
        is True).
    """

    words: np.ndarray
    how: str
    on_levels: np.ndarray
    groups: np.ndarray
    group_words: np.ndarray
    player_groups: list[np.ndarray]
    copies: np.ndarray

    @property
    def channels(self) -> int:
        return len(self.on_levels)

    @property
    def n_groups(self) -> int:
        return len(self.group_words)


def find_players(model: nn.Module, layer: str, net: Network, backgrounds: torch.Tensor, opts: Options,
                 rng: np.random.Generator, *, words: np.ndarray | None, groups: np.ndarray | None) -> Players:
    """Preferred words (or the given ``words``), on-levels and motif groups (from the given motif words
    ``opts.group_words``, the word scan, the channels' responses to each other's words, or the given ``groups``)
    of ``layer``.

    ``backgrounds`` (N, 4, L) set each channel's level on random sequences. ``rng`` draws the places words are
    written at, then the word scan's or the given motif words' random sequences.
    """
    length, K = opts.length, net.channels
    if words is None:
        words, how = preferred_words(model, layer, net.body, length, seed=opts.seed, at=opts.at)
    else:
        how = "given"
    resp = layer_maps(net.body, _insert(words, length, WORD_BACKGROUNDS, rng), net.device, opts.batch).amax(-1)
    resp = resp.reshape(K, WORD_BACKGROUNDS, K).mean(1).double().numpy()  # resp[k, l]: channel l on channel k's word
    on_levels = np.diag(resp).copy()
    background_level = layer_maps(net.body, backgrounds, net.device, opts.batch).amax(-1).double().mean(0).numpy()
    if opts.group_words is not None:
        group_words = opts.group_words
        group_of = _join(_word_profiles(net, group_words, length, rng, opts.batch), on_levels, background_level,
                         opts.group_threshold)
        how += "; motif groups from the given motif words"
    elif groups is None and how != "given" and opts.motif_words == "scan":
        k = min(opts.word_length or (8 if length <= 200 else 6), words.shape[2], length // 2)
        group_words, _, profile = scan_words(net.body, net.head, net.map_shape, length, k, rng=rng,
                                             device=net.device, batch=opts.batch, max_words=opts.top)
        group_of = _join(profile, on_levels, background_level, opts.group_threshold)
        how += f"; motif groups by word scan ({4 ** k:,} {k}-mers)"
        if len(group_words) == 0:
            raise ModelError(f"words: expected motif words of {layer!r} from the word scan, got none (no k-mer "
                             f"changes what the head reads from the layer more than random k-mers do, read again on "
                             f"fresh random sequences); give them with words= or groups=")
    else:
        if groups is None:
            group_of = motif_groups(resp, on_levels, opts.group_threshold, background=background_level)
        else:
            _, group_of = np.unique(groups, return_inverse=True)
        # a group is switched on with the word of its member of highest on-level
        group_words = np.stack([words[mem[np.argmax(on_levels[mem])]]
                                for mem in (np.flatnonzero(group_of == g) for g in range(group_of.max() + 1))])
    G = len(group_words)
    player_groups = [group_of[p:p + 1][group_of[p:p + 1] >= 0] for p in range(K)] + [np.array([g]) for g in range(G)]
    return Players(words=words, how=how, on_levels=on_levels, groups=group_of, group_words=group_words,
                   player_groups=player_groups, copies=np.eye(G, dtype=bool))


def _join(profile: np.ndarray, on_levels: np.ndarray, background_level: np.ndarray, threshold: float) -> np.ndarray:
    """(K,) the motif group each channel joins: the one whose word raises it most (``profile`` (G, K), the rise of
    each channel's largest response when the word is written in), if by at least ``threshold`` of its own range
    (on-level above its ``background_level``); else -1."""
    span = np.where(on_levels - background_level > 0, on_levels - background_level, np.inf)
    rel = profile / span[None, :]
    return np.where(rel.max(0, initial=-np.inf) >= threshold, rel.argmax(0) if len(rel) else -1, -1)


def _word_profiles(net: Network, words: np.ndarray, length: int, rng: np.random.Generator,
                   batch: int) -> np.ndarray:
    """(G, K) the rise of each channel's largest response when each word (G, 4, w) is written into the same
    ``WORD_BACKGROUNDS`` random sequences at the same places (a zero column keeps the sequence's base), over the
    sequences' own: one word's profile does not depend on the other words."""
    base = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (WORD_BACKGROUNDS, length))].transpose(0, 2, 1)
    w = words.shape[2]
    starts = rng.integers(0, length - w + 1, WORD_BACKGROUNDS)
    x = np.repeat(base[None], len(words), 0)  # (G, B, 4, L)
    for b, s in enumerate(starts):
        x[:, b, :, s:s + w] = np.where(words.any(1, keepdims=True), words, x[:, b, :, s:s + w])
    level = layer_maps(net.body, torch.from_numpy(base.copy()), net.device, batch).amax(-1)  # (B, K)
    resp = layer_maps(net.body, torch.from_numpy(x.reshape(-1, 4, length)), net.device, batch).amax(-1)
    return (resp.reshape(len(words), WORD_BACKGROUNDS, -1) - level[None]).mean(1).double().numpy()


def _insert(words: np.ndarray, length: int, n_bg: int, rng: np.random.Generator) -> torch.Tensor:
    """One-hot sequences (len(words) * n_bg, 4, length): each word (4, w) at a random place of random sequences."""
    n_words, _, w = words.shape
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n_words, n_bg, length))].transpose(0, 1, 3, 2).copy()
    starts = rng.integers(0, length - w + 1, (n_words, n_bg))
    for k in range(n_words):
        for b in range(n_bg):
            x[k, b, :, starts[k, b]:starts[k, b] + w] = words[k]
    return torch.from_numpy(x.reshape(n_words * n_bg, 4, length))


def motif_groups(response: np.ndarray, on_levels: np.ndarray, threshold: float = 0.5,
                 background: np.ndarray | None = None) -> np.ndarray:
    """Group channels that detect the same motif, from their responses to each other's preferred words.

    Parameters
    ----------
    response : (K, K) float
        ``response[k, l]``: response of channel l to channel k's word (written into random sequences).
    on_levels : (K,) float
        Each channel's response to its own word.
    threshold : float
        Channels k, l are alike when each fires at ``threshold`` of its on-level or more on the other's word,
        both measured above its ``background`` level; groups are the clusters of average-linkage clustering cut
        at that similarity.
    background : (K,) float, optional
        Each channel's response to the random sequences alone (default 0). Why: a channel's largest response
        over a random sequence is already a sizeable share of its on-level (measured on a trained set I model:
        0.3 to 0.6), so without it any two channels look alike and distinct motifs were merged into one group.

    Returns
    -------
    (K,) int group labels 0..G-1, numbered by first member.
    """
    K = len(on_levels)
    if K == 1:
        return np.zeros(1, int)
    base = np.zeros(K) if background is None else np.asarray(background, dtype=float)
    span = on_levels - base
    rel = (response - base[None, :]) / np.where(span > 0, span, np.inf)[None, :]
    sim = np.clip(np.minimum(rel, rel.T), 0, 1)
    np.fill_diagonal(sim, 1.0)
    labels = fcluster(linkage(squareform(1 - sim, checks=False), "average"), t=1 - threshold, criterion="distance")
    _, first = np.unique(labels, return_index=True)
    renumber = {labels[i]: g for g, i in enumerate(sorted(first))}
    return np.array([renumber[v] for v in labels])
