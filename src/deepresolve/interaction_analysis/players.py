"""The players of the analysis: the layer's K channels with their preferred words and on-levels, then its G motif
groups with the word each is switched on with, its PWM as the network reads it, and which groups are copies of
one motif."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from torch import nn

from .._progress import progress_bar
from ..errors import ModelError
from .network import Network, layer_maps, write_words
from .options import Options
from .words import CopyRule, WordReader, preferred_words, scan_words

#: Random sequences each preferred word is written into to measure the channels' responses to it.
WORD_BACKGROUNDS = 16
#: Probe sequences of the word reader (:class:`~.words.WordReader`): every group word, candidate k-mer and
#: single-base variant is read on them.
PROBES = 32
#: When a word is a copy of a motif group (:class:`~.words.CopyRule`): the share of its read the group's base
#: preferences explain, else the share of the group's core it carries, and the signatures' cosine.
COPIES = CopyRule(same=0.6, core=0.75, parallel=0.3)
#: JASPAR matches kept per group.
MATCHES = 3


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
        The word each group is switched on with; a zero column keeps the background base (words of different
        lengths share the width w', each centred in it).
    group_reads : (G,) float64
        How much each group's word changes what the head reads from the layer (:class:`~.words.WordReader`).
    group_pwms : (G, 4, w') float64
        Each group's PWM as the network reads it (:meth:`~.words.MotifWords.pwms`): probabilities at the
        columns of its word, zero columns elsewhere.
    player_groups : list of K + G int arrays
        The groups each player belongs to (none, or one): a context's coalition leaves them out while the
        player is measured.
    copies : (G, G) bool
        ``copies[g, h]``: groups g and h are copies of one motif by what the network does with them
        (:meth:`~.words.MotifWords.copies`; the diagonal is True). The word scan merges copies, so its groups are
        copies of none; given words or filter groups may be.
    """

    words: np.ndarray
    how: str
    on_levels: np.ndarray
    groups: np.ndarray
    group_words: np.ndarray
    group_reads: np.ndarray
    group_pwms: np.ndarray
    player_groups: list[np.ndarray]
    copies: np.ndarray

    @property
    def channels(self) -> int:
        return len(self.on_levels)

    @property
    def n_groups(self) -> int:
        return len(self.group_words)


def find_players(model: nn.Module, layer: str, net: Network, backgrounds: torch.Tensor, opts: Options,
                 rng: np.random.Generator, *, words: np.ndarray | None, groups: np.ndarray | None,
                 progress: bool = False) -> Players:
    """Preferred words (or the given ``words``), on-levels and motif groups (from the given motif words
    ``opts.group_words``, the word scan, the channels' responses to each other's words, or the given ``groups``)
    of ``layer``, with the groups' PWMs and copies. ``progress``: a progress bar over the word scan's k-mers.

    ``backgrounds`` (N, 4, L) set each channel's level on random sequences. ``rng`` draws the places words are
    written at for the on-levels, the word reader's probe sequences and the word scan's random sequences, in
    that order.
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
    given = opts.group_words is not None
    scan = not given and groups is None and how != "given" and opts.motif_words == "scan"
    # the scan's words grow up to what a channel reads (its word's width) and must fit twice in the input
    width = opts.group_words.shape[2] if given else min(words.shape[2], length // 2) if scan else words.shape[2]
    reader = WordReader(net.body, net.head, net.map_shape, length, width, rng=rng, probes=PROBES,
                        device=net.device, batch=opts.batch)
    if given:
        found = reader.describe(list(opts.group_words))
        group_of = _join(found.profiles, on_levels, background_level, opts.group_threshold)
        how += "; motif groups from the given motif words"
    elif scan:
        # motif groups from the word scan
        k = min(opts.word_length or (8 if length <= 200 else 6), width)
        with progress_bar("word scan", f"{k}-mers", 4 ** k, show=progress) as advance:
            found, merged = scan_words(reader, k, COPIES, seeds=words, rng=rng, max_words=opts.top, progress=advance)
        if len(found) == 0:
            raise ModelError(f"words: expected motif words of {layer!r} from the word scan, got none (no k-mer "
                             f"changes what the head reads from the layer more than random k-mers do, read again on "
                             f"fresh random sequences); give them with words= or groups=")
        group_of = _join(found.profiles, on_levels, background_level, opts.group_threshold)
        how += f"; motif groups by word scan ({4 ** k:,} {k}-mers, {merged:,} copies merged)"
    else:
        if groups is None:
            group_of = motif_groups(resp, on_levels, opts.group_threshold, background=background_level)
        else:
            _, group_of = np.unique(groups, return_inverse=True)
        # a group is switched on with the word of its member of highest on-level
        found = reader.describe([words[mem[np.argmax(on_levels[mem])]]
                                 for mem in (np.flatnonzero(group_of == g) for g in range(group_of.max() + 1))])
    G = len(found)
    player_groups = [group_of[p:p + 1][group_of[p:p + 1] >= 0] for p in range(K)] + [np.array([g]) for g in range(G)]
    return Players(words=words, how=how, on_levels=on_levels, groups=group_of, group_words=found.words,
                   group_reads=found.reads, group_pwms=found.pwms(), player_groups=player_groups,
                   copies=found.copies(COPIES))


def jaspar_matches(pwms: np.ndarray, release: str) -> pd.DataFrame:
    """The best JASPAR matches of each group PWM (G, 4, w; zero columns are not part of a motif) by Tomtom
    (:func:`deepresolve.motifs.tomtom_matches` against :func:`deepresolve.motifs.jaspar_motifs` of ``release``,
    CORE vertebrates).

    Returns
    -------
    pandas.DataFrame
        :data:`MATCHES` rows per group: ``group`` (int), ``rank`` (1 = best), ``target`` ("<matrix id> <name>"),
        ``p_value``, ``q_value`` (Benjamini-Hochberg over the group's targets), ``offset``, ``overlap``,
        ``strand``.
    """
    from ..motifs import jaspar_motifs, tomtom_matches

    trimmed = [p[:, p.sum(0) > 0] for p in pwms]
    df = tomtom_matches(trimmed, jaspar_motifs(release), names=[str(g) for g in range(len(pwms))],
                        n_matches=MATCHES, n_jobs=1)
    df.insert(0, "group", df.pop("query").astype(int))
    return df.drop(columns="score").reset_index(drop=True)


def _join(profile: np.ndarray, on_levels: np.ndarray, background_level: np.ndarray, threshold: float) -> np.ndarray:
    """(K,) the motif group each channel joins: the one whose word raises it most (``profile`` (G, K), the rise of
    each channel's largest response when the word is written in), if by at least ``threshold`` of its own range
    (on-level above its ``background_level``); else -1."""
    span = np.where(on_levels - background_level > 0, on_levels - background_level, np.inf)
    rel = profile / span[None, :]
    return np.where(rel.max(0, initial=-np.inf) >= threshold, rel.argmax(0) if len(rel) else -1, -1)


def _insert(words: np.ndarray, length: int, n_bg: int, rng: np.random.Generator) -> torch.Tensor:
    """One-hot sequences (len(words) * n_bg, 4, length): each word (4, w) at a random place of random sequences."""
    n_words, _, w = words.shape
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n_words, n_bg, length))].transpose(0, 1, 3, 2)
    x = torch.from_numpy(x.reshape(n_words * n_bg, 4, length).copy())
    starts = torch.from_numpy(rng.integers(0, length - w + 1, n_words * n_bg))
    write_words(x, torch.arange(len(x)), torch.from_numpy(np.asarray(words, np.float32)).repeat_interleave(n_bg, 0),
                starts)
    return x


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
