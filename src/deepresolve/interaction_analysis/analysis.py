"""Feature interactions of a layer, without a data set: which learned features act together, and how.

DeepResolve's inconsistency level (IL) looks at the optima of a penalised ascent; for a piecewise-linear head
the optimum sits where the head is locally linear, so an XOR written as ``a + b - 2 relu(a + b - 1)`` is never
seen (issue 10). This module measures interactions directly, as second differences of the class output when
features of the layer are switched on (random-context second differences).

Players
-------
The K channels of the layer, and its G *motif groups*: the motifs the network reads, each with the channels that
detect it (trained networks learn one motif with several filters, which then interact like an OR, through
saturation, and one filter often matches parts of several motifs).

* **Preferred word** of each channel: for a first-layer channel (a convolution on the one-hot input followed only
  by element-wise activations, pooling or dropout) the consensus of its filter, which gives the largest
  response the filter can give to any sequence (sum of the column maxima of the weights plus the bias); for
  deeper channels the receptive-field ascent of :func:`deepresolve.motifs.channel_motifs` from random sequences.
  ``words=`` overrides both (e.g. known motifs). **On-level** ``a_k``: the channel's response to its own word
  written into random sequences (max over the layer's positions); exact for a first-layer channel.
* **Motif groups**, ``motif_words="scan"`` (default; the word scan, :func:`scan_words`): every k-mer (k = 8 for
  inputs up to 200 bp, else 6; ``word_length``) is written into random sequences, and its *read* is how much it
  changes the input of the head's first linear map, i.e. what the rest of the network takes from the layer.
  K-mers whose read is a robust outlier, and still one when read again on fresh random sequences, are taken in
  order of that second read, copies of an earlier word set aside (k-mers carrying 3/4 of its *core*, the bases
  its read depends on: shifted, mismatched, fragments), up to ``top`` words; each word is a group, and a channel joins the group whose
  word raises it most, if by at least ``group_threshold`` (0.5) of its range (on-level above its level on random
  sequences; else ``groups`` is -1 for it). It needs no output class and no partner, so it finds motifs that act
  only together. With ``words=`` or ``groups=`` given, the groups are made as for "filters".
* ``motif_words="filters"``: channels k, l whose preferred words make each other fire at ``group_threshold`` of
  their range or more, joined by average-linkage clustering (``groups=`` overrides); a group is switched on with
  the word of its member of highest on-level. Why it is not the default: on trained models a filter's consensus
  is often a chimera of parts of two motifs; in ``benchmarks/interactions_logic.py`` filter words missed a planted
  motif of the 3-way AND models, which met the target on 0 of 5 seeds (the scan: 4 of 5), and filter words met it
  in 5 of the 8 trained cases against the scan's 8 (figures in the README).

Switching players on (how W > 1 is handled)
-------------------------------------------
A *context* is a background sequence (uniform random; dinucleotide shuffles of ``inputs=`` when given) with
``L // w`` non-overlapping slots for words of width w, in random order, and one uniformly random position of the
layer's W positions for every channel. A **group** is switched on in sequence space: its word is written into
slot 0 (player i) or slot 1 (player j) and the body computes the layer's map, so the motif occurrence sets every
channel and position of the layer as a real occurrence does (a single-column edit of the map does not: on a
trained set I model it gave the XOR pair -1.4 where planting the motifs gives -18 in logits). A **channel** is
switched on in feature space: ``H[k, w] = max(H[k, w], a_k)`` at the context's position w for it. A context
also carries a random *coalition*: each of the ``context_groups`` groups with the largest main effects is
present (written into the slots from 2 on) with probability ``context_on``, so that interactions that need a
third motif (set I's XOR needs CAGGTC) are seen; the groups of i and j are removed from it.

Statistics
----------
On the output scale ``scale`` (probability for models ending in a sigmoid/softmax, else the raw output):

* **Interaction** of i, j for class c: the mean over contexts of ``v(S+ij) - v(S+i) - v(S+j) + v(S)``; > 0 synergy
  (AND-like), < 0 antagonism (XOR-, OR- or veto-like). The 2 x 2 truth table ``t[a, b]`` (mean output with i
  off/on, j off/on) is kept for every pair: the interaction is ``t11 - t10 - t01 + t00`` and :func:`kind` names it.
* **Main effect**: the mean of ``v(S+i) - v(S)``. Pairs are evaluated among each class's ``top`` channels and
  ``top`` groups by *relative strength*: the larger of |main effect| / the class's largest on the output scale
  and the same ratio on the logit scale (players below ``min_effect`` are left out; their pairs are NaN). The
  coalition's ``context_groups`` are chosen in pure background contexts by the larger of that strength and the
  strength of the group's largest *joint* effect with one partner, ``v(S+g+h) - v(S)`` (relative, on both scales,
  among the ``2 top`` strongest groups): a member of a 3-way AND has no main effect at all, alone or on either
  scale, but a joint effect with one partner in logits (+3 to +4 measured), so it now enters the coalition and
  the pair of the other two members is seen with it. Why the logit
  scale too: on the probability scale a motif that only acts with partners, or that moves an output saturated
  far from 0.5, has a main effect near 0 and was never paired (set I's CGCTTG does nothing without CAGGTC; in a
  trained 3-way AND every probability main effect is exactly 0 at logits near -100), while its logit moves.
  Measured on the cached benchmark models with filter words (``benchmarks/interactions_logic.py``): the set I
  XOR pair was evaluated on 3 of 4 seeds instead of 2 and ranked first on 1 instead of 0; the other cases unchanged. Interactions and p-values stay on the output scale.
* **p-value**: one-sided t-test over the contexts of the interval null ``|interaction| <= margin x s_c``, with
  ``s_c`` the rms main effect of the class's ``top`` players: a pair is significant when it is reliably larger
  than a tenth (default) of a typical main effect, so small interactions of an additive network's ReLUs are not.

Cost
----
The word scan: 4^k x 4 body passes (k = 8: 262,144; seconds for a small model, but for a 1000-bp DeepSEA body
pass use ``word_length=6``, 16,384 passes), then 16 passes per outlier k-mer (the second read; a few hundred
outliers on the benchmark models) and 16 x 3k per word kept (its core). With P evaluated pairs (the union over classes of channel and group pairs; at most ``C top (top - 1)``), n
contexts, K channels and G groups: ``2 n (K + G)`` evaluations for the main effects (twice: with and without the
coalition) and ``4 n P`` for the pairs, each one body + head pass on one sequence; every pass gives all C classes
at once, so C enters only through P. For K = 1000, C = 2000, top = 24, n = 64: at most P = 2 x 2000 x 276 =
1.1 M pairs (in practice far fewer: classes share their top channels), i.e. at most 2.8e8 passes. The main
effects of the preferred words cost K x 16 body passes; the deep-layer ascent 150 steps x 4 starts per channel.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import t as student_t
from torch import nn

from .._checks import check_choice, check_classes, check_float, check_int, check_shape
from .._checks import class_names as name_classes
from .._model import check_device
from ..errors import ArgumentError, ModelError
from ..results.interactions import Interactions
from ..split import split_model

_FIRST_LAYER_FOLLOWERS = (nn.ReLU, nn.MaxPool1d, nn.Dropout, nn.Identity, nn.ELU, nn.LeakyReLU, nn.GELU,
                          nn.Softplus, nn.Sigmoid, nn.Tanh, nn.Flatten)


# ----------------------------------------------------------------------------------------------------------------
# Preferred words, on-patterns and groups


def _leaf_modules(body: nn.Module) -> list[nn.Module] | None:
    if not isinstance(body, nn.Sequential):
        return None
    out = []
    for m in body:
        inner = _leaf_modules(m) if isinstance(m, nn.Sequential) else [m]
        if inner is None:
            return None
        out.extend(inner)
    return out


def _first_layer_conv(body: nn.Module) -> nn.Conv1d | None:
    """The convolution when the body is one Conv1d on the one-hot input followed only by element-wise or pooling
    modules (then a channel's largest response to any sequence is its filter's consensus); else None."""
    leaves = _leaf_modules(body)
    if not leaves or not isinstance(leaves[0], nn.Conv1d) or leaves[0].in_channels != 4 or leaves[0].groups != 1:
        return None
    if leaves[0].dilation != (1,) or not all(isinstance(m, _FIRST_LAYER_FOLLOWERS) for m in leaves[1:]):
        return None
    return leaves[0]


def _insert(words: np.ndarray, length: int, n_bg: int, rng: np.random.Generator) -> torch.Tensor:
    """One-hot sequences (len(words) * n_bg, 4, length): each word (4, w) at a random place of random sequences."""
    n_words, _, w = words.shape
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n_words, n_bg, length))].transpose(0, 1, 3, 2).copy()
    starts = rng.integers(0, length - w + 1, (n_words, n_bg))
    for k in range(n_words):
        for b in range(n_bg):
            x[k, b, :, starts[k, b]:starts[k, b] + w] = words[k]
    return torch.from_numpy(x.reshape(n_words * n_bg, 4, length))


def _random_sequences(rng: np.random.Generator, n: int, length: int) -> torch.Tensor:
    """Uniform random one-hot sequences (n, 4, length)."""
    return torch.eye(4)[torch.from_numpy(rng.integers(0, 4, (n, length)))].transpose(1, 2).contiguous()


def _channels(h: torch.Tensor) -> torch.Tensor:
    """A layer's output as (N, K, W); W = 1 for a flat layer."""
    return h[:, :, None] if h.dim() == 2 else h.reshape(h.shape[0], h.shape[1], -1)


@torch.no_grad()
def _maps(body: nn.Module, x: torch.Tensor, device: torch.device, batch: int) -> torch.Tensor:
    return torch.cat([_channels(body(x[i:i + batch].to(device)).float()).cpu() for i in range(0, len(x), batch)])


def preferred_words(model: nn.Module, layer: str, body: nn.Module, length: int, *, seed: int = 0,
                    at: str = "output") -> tuple[np.ndarray, str]:
    """One-hot word (K, 4, w) that each channel of ``layer`` responds to most, and how it was found.

    First-layer channels: the filter's consensus (exact maximiser). Deeper channels: the best fragment of the
    receptive-field ascent (:func:`deepresolve.motifs.channel_motifs`) from 64 random sequences, its argmax bases.
    """
    conv = _first_layer_conv(body)
    if conv is not None:
        wts = conv.weight.detach().cpu().numpy()
        return np.eye(4, dtype=np.float32)[wts.argmax(axis=1)].transpose(0, 2, 1).copy(), "filter consensus (exact)"
    if at != "output":
        raise ArgumentError(f"inputs: on-levels of a deeper layer come from the receptive-field ascent, which needs "
                         f"at='output'; got at={at!r}. Analyse the output of the module before {layer!r} instead")
    from ..motifs import channel_motifs

    rng = np.random.default_rng(seed)
    seqs = _random_sequences(rng, 64, length).numpy()
    _, info = channel_motifs(model, layer, seqs, restarts=4, steps=150, seed=seed)
    best = info["activation"].argmax(axis=1)
    frags = info["all_pwms"][np.arange(len(best)), best]  # (K, 4, rf), columns normalised
    return np.eye(4, dtype=np.float32)[frags.argmax(axis=1)].transpose(0, 2, 1).copy(), "receptive-field ascent"


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


def _head_reader(head: nn.Module) -> nn.Module:
    """The head up to and including its first linear map (Linear or convolution), after any reshaping or dropout:
    what the rest of the network reads from the layer. When the head does not start that way, the layer itself
    (the head's input): the head's output would miss a motif that acts only with partners."""
    leaves = _leaf_modules(head) or []
    for i, m in enumerate(leaves):
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            return nn.Sequential(*leaves[:i + 1])
        if not isinstance(m, (nn.Flatten, nn.Unflatten, nn.Dropout, nn.Identity)):
            break
    return nn.Identity()


def _has_core(x: np.ndarray, y: np.ndarray, core: np.ndarray) -> float:
    """The largest share of ``y``'s core positions (``core``, bool (k,)) where k-mer ``x`` has ``y``'s base, over
    relative shifts; core positions shifted past ``x``'s end count as missing (so 1.0: ``x`` carries the whole core)."""
    k = len(y)
    pos = np.flatnonzero(core)
    best = 0
    for s in range(-k + 1, k):
        at = pos + s
        inside = (at >= 0) & (at < k)
        best = max(best, int((x[at[inside]] == y[pos[inside]]).sum()))
    return best / max(len(pos), 1)


def _read_kmers(body: nn.Module, reader: nn.Module, shape: tuple[int, ...], base: torch.Tensor, kmers: torch.Tensor,
                starts: torch.Tensor, device: torch.device, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each k-mer (n, k) written into every background sequence ``base`` (B, 4, L) at ``starts`` (n, B): the median
    over the backgrounds of the norm of the change at the head's reader (n,), and the mean rise of each channel's
    largest response (n, K)."""
    B, k = len(base), kmers.shape[1]
    hb = _channels(body(base.to(device)).float())
    zb = reader(hb.reshape(B, *shape)).flatten(1)
    ab = hb.amax(-1)
    eye = torch.eye(4)
    reads, profiles = [], []
    step = max(1, batch // B)
    for s in range(0, len(kmers), step):
        km = kmers[s:s + step]
        n = len(km)
        x = base.repeat(n, 1, 1)  # (n * B, 4, L)
        cols = starts[s:s + n].reshape(-1, 1) + torch.arange(k)[None, :]
        x[torch.arange(len(x))[:, None], :, cols] = eye[km.repeat_interleave(B, 0)]
        h = _channels(body(x.to(device)).float())
        z = reader(h.reshape(len(x), *shape)).flatten(1)
        reads.append((z - zb.repeat(n, 1)).norm(dim=1).reshape(n, B).median(1).values.cpu())
        profiles.append((h.amax(-1) - ab.repeat(n, 1)).reshape(n, B, -1).mean(1).cpu())
    return torch.cat(reads).double(), torch.cat(profiles).double()


@torch.no_grad()
def scan_words(body: nn.Module, head: nn.Module, shape: tuple[int, ...], length: int, k: int, *,
               backgrounds: int = 4, rng: np.random.Generator, device: torch.device, batch: int = 4096,
               max_words: int = 24, cutoff: float = 4.0, same: float = 0.75,
               core_backgrounds: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Motif words of a layer: the k-mers the network reads, clustered into one word per motif (a word scan).

    Every k-mer (all 4^k) is written at a random place of ``backgrounds`` random sequences; its *read* is the
    median over them (a k-mer that forms a motif with one background's flanks does not count) of the norm of the
    change it makes to the head's first linear map (:func:`_head_reader`), i.e. to
    what the rest of the network takes from the layer. Why the head's input, not the layer's: a trained layer
    responds to every k-mer somewhat (its filters are partial matches of several motifs), but the head is trained
    to read the motifs; on five trained 3-way AND models the three planted motifs were among the top 11 6-mers of
    4,096 (the others: their shifted copies), while the layer's own change ranked them 1,373rd or lower. The scan needs no output class and
    no partner motif, so it finds motifs that act only together (an AND's members have no main effect).

    K-mers whose read is an outlier (robust z-score, median and MAD, at least ``cutoff``) are read again on
    ``core_backgrounds`` fresh random sequences and kept if still an outlier by the same measure (and at least a
    tenth of the largest read): with 4 backgrounds the largest of 4^k reads include flukes, k-mers whose
    placements completed a motif with the flanks, and inflated chimeras of two motifs' fragments (on a trained
    NOT model a GCTC..-fragment chimera went from z 19.5 to 7.2 on fresh backgrounds and ranked below the real
    GCTCAT word, 16.6). In order of this second read, a k-mer is a copy of an earlier word when, at some
    shift, it has that word's bases at ``same`` (3/4) or more of the word's *core* positions (core positions
    shifted past its end count as missing): mismatched copies, shifted copies, fragments at the k-mer's edge;
    else it starts a new word, up to ``max_words``. A word's *core* is the positions its read depends on:
    where a single-base change (mean over the 3 others, read on the same fresh sequences) removes at least half
    of its read above the median k-mer's; at least k / 2 positions (the largest drops). Why the core: a word's
    flanks are whatever k-mer read highest, and two motifs can share a run of bases (set I's CGCTTG and GCTCAT
    share CGCT when GCTCAT follows a C); the rule used before, on whole words (6 of 8 bases, or a shared run of
    4), merged set I's CGCTTG and GCTCAT words into one group on 2 of its 5 benchmark models (one kept only a
    fragment, GCTTGCGC, as CGCTTG's word; the other no GCTCAT word at all).
    Why by sequence and not by the channels a k-mer excites: trained filters are
    partial matches of several motifs, so two motifs excite much the same channels (cosine 0.8 between the
    channel profiles of two planted motifs of a trained 3-way AND model).

    Returns
    -------
    words : (M, 4, k) one-hot
    reads : (M,) float
    profiles : (M, K) float
        Rise of each channel's largest response over the fresh random sequences' when the word is written in.
    """
    reader = _head_reader(head)
    base = _random_sequences(rng, backgrounds, length)
    kmers = torch.from_numpy(np.indices((4,) * k).reshape(k, -1).T.copy())  # (4^k, k), lexicographic
    starts = torch.from_numpy(rng.integers(0, length - k + 1, (len(kmers), backgrounds)))
    read, profile = (t.numpy() for t in _read_kmers(body, reader, shape, base, kmers, starts, device, batch))
    med = np.median(read)
    mad = 1.4826 * np.median(np.abs(read - med))
    with np.errstate(divide="ignore", invalid="ignore"):  # MAD 0 (exact detectors): anything above the bulk...
        z = np.where(read > med, (read - med) / mad, 0.0)
    z[read < 0.1 * read.max()] = 0.0  # ...that is not negligible (a chance occurrence in one background)
    # the outliers, read again on fresh backgrounds: the screen's largest reads include flukes (a k-mer whose
    # placements happened to complete a motif with the flanks; chimeras of two motifs' fragments inflated so)
    cand = np.flatnonzero(z >= cutoff)
    core_base = _random_sequences(rng, core_backgrounds, length)
    km = kmers.numpy()

    def reread(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, pr = _read_kmers(body, reader, shape, core_base, torch.from_numpy(rows),
                            torch.from_numpy(rng.integers(0, length - k + 1, (len(rows), core_backgrounds))),
                            device, batch)
        return r.numpy(), pr.numpy()

    read, profile = reread(km[cand]) if len(cand) else (np.zeros(0), np.zeros((0, profile.shape[1])))
    keep = ((read > med + cutoff * mad) | ((mad == 0) & (read > med))) & (read >= 0.1 * read.max(initial=0.0))
    cand, read, profile = cand[keep], read[keep], profile[keep]
    chosen: list[int] = []
    cores: list[np.ndarray] = []
    for c in np.argsort(-read, kind="stable"):
        if len(chosen) == max_words:
            break
        word = km[cand[c]]
        if any(_has_core(word, km[cand[j]], core) >= same for j, core in zip(chosen, cores)):
            continue
        chosen.append(int(c))
        # its core: where a single-base change (mean over the 3 others) removes half of the read above the
        # median k-mer's; at least k / 2 positions (the largest drops)
        variants = np.stack([np.r_[word[:p], b, word[p + 1:]] for p in range(k) for b in range(4) if b != word[p]])
        drop = read[c] - reread(variants)[0].reshape(k, 3).mean(1)
        core = drop >= 0.5 * (read[c] - med)
        if core.sum() < np.ceil(k / 2):
            core = np.zeros(k, bool)
            core[np.argsort(-drop, kind="stable")[:int(np.ceil(k / 2))]] = True
        cores.append(core)
    idx = np.array(chosen, dtype=int)
    words = np.eye(4, dtype=np.float32)[km[cand[idx]]].transpose(0, 2, 1).copy() if len(idx) else \
        np.zeros((0, 4, k), np.float32)
    return words, read[idx], profile[idx]


# ----------------------------------------------------------------------------------------------------------------
# Evaluation of switched-on maps


class _Evaluator:
    """Builds the inputs of every row in batches and returns the class logits.

    A row is (context, players a and b switched on or -1, groups dropped from the coalition). Groups are
    switched on in sequence space: the group's word is written into the context's background sequence at one of
    the context's slots (slot 0 for a, 1 for b, the coalition's groups from slot 2 on, in group order, as far as
    slots last); the body gives the layer's map; channels are then switched on in feature space at the context's
    position for them, ``H[k, w] = max(H[k, w], a_k)``; the head gives the logits.
    """

    def __init__(self, body: nn.Module, head: nn.Module, shape: tuple[int, ...], seqs: torch.Tensor,
                 words: torch.Tensor, starts: torch.Tensor, on_levels: torch.Tensor, positions: torch.Tensor,
                 coalition: torch.Tensor, classes: torch.Tensor, device: torch.device, batch: int):
        self.body, self.head, self.shape = body, head, shape
        self.seqs, self.words, self.starts = seqs, words, starts  # (n, 4, L), (G, 4, w), (n, slots)
        self.on, self.pos, self.coalition = on_levels, positions, coalition  # (K,), (n, K), (n, G)
        self.K, self.classes, self.device, self.batch = len(on_levels), classes, device, batch

    def _write(self, x: torch.Tensor, rows: torch.Tensor, groups: torch.Tensor, starts: torch.Tensor) -> None:
        w = self.words.shape[-1]
        cols = starts[:, None] + torch.arange(w)[None, :]  # (r, w)
        x[rows[:, None], :, cols] = self.words[groups].transpose(1, 2)

    @torch.no_grad()
    def __call__(self, ctx: torch.Tensor, on: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        """Logits (rows, C). ctx (rows,) context; on (rows, 2) players switched on (-1 none); drop (rows, G)."""
        out = []
        n_slots = self.starts.shape[1]
        for s in range(0, len(ctx), self.batch):
            c, o, d = ctx[s:s + self.batch], on[s:s + self.batch], drop[s:s + self.batch]
            r = torch.arange(len(c))
            x = self.seqs[c].clone()
            active = self.coalition[c] & ~d
            slot = 1 + torch.cumsum(active.long(), 1)  # coalition groups from slot 2 on
            for g in torch.nonzero(active.any(0)).flatten().tolist():
                rows = r[active[:, g] & (slot[:, g] < n_slots)]
                if len(rows):
                    self._write(x, rows, torch.full((len(rows),), g), self.starts[c[rows], slot[rows, g]])
            for col in range(2):
                rows = r[o[:, col] >= self.K]
                if len(rows):
                    self._write(x, rows, o[rows, col] - self.K, self.starts[c[rows], col])
            h = _channels(self.body(x.to(self.device)).float())
            for col in range(2):
                rows = r[(o[:, col] >= 0) & (o[:, col] < self.K)]
                k = o[rows, col]
                w = self.pos[c[rows], k]
                h[rows, k, w] = torch.maximum(h[rows, k, w], self.on[k].to(h.device))
            logits = self.head(h.reshape(len(c), *self.shape)).float()
            out.append(logits[:, self.classes].cpu())
        return torch.cat(out)


def _pair_logits(ev: _Evaluator, pairs: np.ndarray, players_group: list[np.ndarray], n: int, G: int) -> torch.Tensor:
    """Logits (n, P, 2, 2, C) of player pairs (P >= 1) in each context, with each player off/on."""
    P = len(pairs)
    ctx = torch.arange(n).repeat_interleave(4 * P)
    pr = torch.as_tensor(pairs).repeat(n, 1).repeat_interleave(4, 0)  # (n*P*4, 2)
    ab = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]).repeat(n * P, 1)
    on = torch.where(ab.bool(), pr, torch.full_like(pr, -1))
    drop_pp = torch.zeros(P, G, dtype=torch.bool)
    for q, (i, j) in enumerate(pairs):
        drop_pp[q, players_group[i]] = True
        drop_pp[q, players_group[j]] = True
    drop = drop_pp.repeat(n, 1).repeat_interleave(4, 0)
    return ev(ctx, on, drop).reshape(n, P, 2, 2, -1).double()


def _pair_stats(ev: _Evaluator, pairs: np.ndarray, players_group: list[np.ndarray], n: int, G: int, squash: bool):
    """Truth tables (C, P, 2, 2) of player pairs on the output scale (``squash``: sigmoid of the logits),
    averaged over n contexts, and the standard errors (C, P) of their second differences."""
    if len(pairs) == 0:
        return np.zeros((len(ev.classes), 0, 2, 2)), np.zeros((len(ev.classes), 0))
    v = _pair_logits(ev, pairs, players_group, n, G)
    if squash:
        v = torch.sigmoid(v)
    second = v[:, :, 1, 1] - v[:, :, 1, 0] - v[:, :, 0, 1] + v[:, :, 0, 0]  # (n, P, C)
    se = second.std(0, unbiased=True).T / np.sqrt(n) if n > 1 else torch.full(second.shape[1:], np.nan).T
    return v.mean(0).permute(3, 0, 1, 2).numpy(), se.numpy()


def _main_effects(ev: _Evaluator, players: np.ndarray, players_group: list[np.ndarray], n: int, G: int,
                  squash: bool):
    """Main effects (C, players), the mean of v(S + p) - v(S) with S the context without p's group, on the
    output scale (``squash``: sigmoid of the logits) and on the logit scale."""
    m = len(players)
    ctx = torch.arange(n).repeat_interleave(2 * m)
    pl = torch.as_tensor(players).repeat(n).repeat_interleave(2)
    on = torch.stack([torch.where(torch.arange(len(pl)) % 2 == 1, pl, torch.full_like(pl, -1)),
                      torch.full_like(pl, -1)], 1)
    drop_p = torch.zeros(m, G, dtype=torch.bool)
    for q, p in enumerate(players):
        drop_p[q, players_group[p]] = True
    drop = drop_p.repeat(n, 1).repeat_interleave(2, 0)
    v = ev(ctx, on, drop).reshape(n, m, 2, -1).double()
    logit = (v[:, :, 1] - v[:, :, 0]).mean(0).T.numpy()
    if not squash:
        return logit, logit
    p = torch.sigmoid(v)
    return (p[:, :, 1] - p[:, :, 0]).mean(0).T.numpy(), logit


def _relative_strength(main: np.ndarray, logit: np.ndarray) -> np.ndarray:
    """(C, m) each player's |main effect| relative to the class's largest, the larger of the output scale's and
    the logit scale's: a motif whose effect the sigmoid hides (saturated, or needing partners that are absent)
    still shows in the logit."""
    def rel(m):
        top = np.abs(m).max(1, keepdims=True)
        return np.abs(m) / np.where(top > 0, top, np.inf)
    return np.maximum(rel(main), rel(logit))


def _pair_strength(ev: _Evaluator, screened: np.ndarray, K: int, players_group: list[np.ndarray], n: int, G: int,
                   squash: bool, single: np.ndarray) -> np.ndarray:
    """(C, G) strength of each group alone or with one partner: the larger of ``single`` (relative |main effect|)
    and, for the ``screened`` groups, the largest relative |joint effect| v(S+g+h) - v(S) over partners h, on
    the output scale and on the logit scale. A motif that acts only with two partners (a 3-way AND) has no main
    effect and no single-partner effect on the output scale, but a joint effect with one partner in logits."""
    pairs = np.array([(K + a, K + b) for x, a in enumerate(screened) for b in screened[x + 1:]], dtype=int).reshape(-1, 2)
    if not len(pairs):
        return single
    v = _pair_logits(ev, pairs, players_group, n, G)
    joints = [(v[:, :, 1, 1] - v[:, :, 0, 0]).mean(0).T.numpy()]  # (C, P)
    if squash:
        v = torch.sigmoid(v)
        joints.append((v[:, :, 1, 1] - v[:, :, 0, 0]).mean(0).T.numpy())
    out = single.copy()
    for joint in joints:
        best = np.zeros_like(single)
        for col in range(2):
            np.maximum.at(best.T, pairs[:, col] - K, np.abs(joint).T)
        top = best.max(1, keepdims=True)
        out = np.maximum(out, best / np.where(top > 0, top, np.inf))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Entry point


def interactions(
    model: nn.Module,
    layer: str,
    *,
    input_shape: Sequence[int],
    classes: Sequence[int] | int | None = None,
    at: str = "output",
    contexts: int = 128,
    context_on: float = 1 / 3,
    context_groups: int = 6,
    top: int = 24,
    min_effect: float = 0.1,
    scale: str = "auto",
    margin: float = 0.1,
    alpha: float = 0.01,
    groups: Sequence[int] | None = None,
    words: np.ndarray | None = None,
    group_threshold: float = 0.5,
    motif_words: str = "scan",
    word_length: int | None = None,
    inputs: np.ndarray | torch.Tensor | None = None,
    backgrounds: int = 256,
    class_names: Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    verbose: bool = False,
) -> Interactions:
    """Pairwise interactions of a layer's channels and motif groups for each class logit, without a data set.

    See the module docstring for the method (random-context second differences in feature space), the null
    behind the p-values and the cost.

    Parameters
    ----------
    model : nn.Module
        Takes one-hot (N, 4, L).
    layer : str
        Module name (``model.named_modules()``); H is its output (``at="output"``) or input.
    input_shape : (4, L)
    classes : int or sequence of int, optional
        Output indices (default all).
    contexts : int
        n, the number of random contexts every statistic is averaged over.
    context_on : float
        Probability that each of the ``context_groups`` groups with the largest |main effect| is switched on in
        a context. 0 gives pure background contexts; 0.5 a Banzhaf-style average over coalitions. The default
        1/3 keeps a third-motif condition visible (e.g. set I's AND partner) while other motifs are present often
        enough to show interactions that need them.
    top : int
        Pairs are evaluated among each class's ``top`` channels and ``top`` groups by |main effect|.
    min_effect : float
        Players whose |main effect| is below this fraction of the class's largest (among channels, among groups)
        on the output scale and on the logit scale are left out of the pairs: their interactions are NaN.
    scale : {"auto", "probability", "logit"}
        Output scale the interactions are measured on. Logic is a statement about the output probability: a
        trained OR model keeps raising its logit when both motifs occur (super-additive logits, +5 measured)
        while its probability saturates (antagonism), and set I's AND partners are sub-additive in logits but
        synergistic in probability. "probability" applies a sigmoid to each output; "auto" (default) does so
        when the model ends in a sigmoid/softmax, and uses the raw output otherwise (regression models).
    margin : float
        The null hypothesis of the p-values: the pair's interaction is at most ``margin`` times the class's rms
        main effect (an effectively additive pair); one-sided t-test over the contexts.
    alpha : float
        Significance level of :meth:`Interactions.table`.
    groups : (K,) int, optional
        Motif group of each channel, instead of grouping by co-activation.
    words : (K, 4, w) one-hot, optional
        Preferred word of each channel (e.g. known motifs), instead of the filter consensus or the ascent.
    group_threshold : float
        Relative response (above the random-sequence level) that makes two channels one group
        (:func:`motif_groups`), or a channel a member of a scanned word's group.
    motif_words : {"scan", "filters"}
        Where the motif groups and their words come from: "scan" (default), the word scan (:func:`scan_words`);
        "filters", channels grouped by their responses to each other's filter words. See the module docstring.
    word_length : int, optional
        k of the word scan: 4^k x 4 body passes. Default 8 for inputs up to 200 bp, else 6 (a 1000-bp DeepSEA
        body pass costs about 20 ms on one CPU thread: 16,384 passes are minutes, 262,144 an hour and a half);
        never more than the channels' word width or L // 2.
    inputs : (N, 4, L), optional
        Real sequences: backgrounds become their dinucleotide shuffles instead of uniform random sequences.
    backgrounds : int
        Background sequences drawn; each context takes a different one while there are enough.
    class_names, channel_names : sequence of str, optional
    seed : int
        Drives every random choice: backgrounds, contexts, coalitions, positions, null heads, ascent.
    device : str or torch.device, optional
    batch_size : int, optional
        Maps per head evaluation (default 4096).
    verbose : bool

    Returns
    -------
    Interactions
    """

    for name, v, lo in (("contexts", contexts, 1), ("context_groups", context_groups, 0), ("top", top, 2),
                        ("backgrounds", backgrounds, 1), ("seed", seed, 0)):
        check_int(v, name, minimum=lo)
    check_float(context_on, "context_on", minimum=0.0, maximum=1.0)
    check_float(margin, "margin", minimum=0.0)
    check_float(alpha, "alpha", minimum=0.0, below=1.0)
    shape = check_shape(input_shape, "input_shape")
    if len(shape) != 2 or shape[0] != 4:
        raise ArgumentError(f"input_shape: expected (4, L) for one-hot sequences, got {shape!r}")
    if batch_size is not None:
        check_int(batch_size, "batch_size", minimum=1)
    if word_length is not None:
        check_int(word_length, "word_length", minimum=2, maximum=10)
    check_choice(scale, "scale", ("auto", "probability", "logit"))
    check_choice(motif_words, "motif_words", ("filters", "scan"))
    length = int(input_shape[1])
    device = check_device(device)
    batch = batch_size or 4096
    body, head = split_model(model, layer, input_shape=tuple(input_shape), at=at)
    if scale == "auto":
        # the model's own output scale: probabilities when it ends in a sigmoid/softmax that split_model removed
        _, raw = split_model(model, layer, input_shape=tuple(input_shape), at=at, logits=False)
        with torch.no_grad():
            probe = body(torch.zeros(2, *input_shape))
            scale = "logit" if torch.allclose(raw(probe), head(probe)) else "probability"
    squash = scale == "probability"  # the head stays on logits: players are chosen on both scales
    body, head = body.to(device), head.to(device)
    rng = np.random.default_rng(seed)

    # Background maps
    if inputs is None:
        xb = _random_sequences(rng, backgrounds, length)
    else:
        from tangermeme.ersatz import dinucleotide_shuffle

        xi = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
        if xi.dim() != 3 or tuple(xi.shape[1:]) != (4, length):
            raise ArgumentError(f"inputs: expected shape (N, 4, {length}), got {tuple(xi.shape)}")
        pick = rng.choice(len(xi), size=backgrounds, replace=len(xi) < backgrounds)
        xb = dinucleotide_shuffle(xi[pick], n=1, random_state=int(seed))[:, 0]
    with torch.no_grad():
        shape = tuple(body(xb[:1].to(device)).shape[1:])
    bg = _maps(body, xb, device, batch)
    K, W = bg.shape[1], bg.shape[2]
    out_C = head(bg[:1].reshape(1, *shape).to(device)).shape[1]
    classes_list = check_classes(classes, int(out_C))
    names = name_classes(class_names, classes_list, int(out_C))
    if channel_names is not None and len(channel_names) != K:
        raise ArgumentError(f"channel_names: expected one per channel, got {len(channel_names)} channel_names for {K} channels of {layer!r}")

    # Preferred words -> on-levels, responses, groups
    if words is None:
        words, how = preferred_words(model, layer, body, length, seed=seed, at=at)
    else:
        words, how = np.asarray(words, dtype=np.float32), "given"
        if words.ndim != 3 or words.shape[0] != K or words.shape[1] != 4 or not 1 <= words.shape[2] <= length:
            raise ArgumentError(f"words: expected one-hot of shape ({K}, 4, w) with w <= {length}, "
                             f"got {words.shape}")
    n_word_bg = 16
    resp = _maps(body, _insert(words, length, n_word_bg, rng), device, batch).amax(-1)
    resp = resp.reshape(K, n_word_bg, K).mean(1).double().numpy()  # resp[k, l]: channel l on channel k's word
    on_levels = np.diag(resp).copy()
    background_level = bg.amax(-1).double().mean(0).numpy()
    if groups is None and how != "given" and motif_words == "scan":
        # motif groups from the word scan; a channel joins the group whose word raises it most, if by at least
        # group_threshold of its own range (on-level above background)
        k = min(word_length or (8 if length <= 200 else 6), words.shape[2], length // 2)
        group_words, _, profile = scan_words(body, head, shape, length, k, rng=rng, device=device, batch=batch,
                                             max_words=top)
        span = np.where(on_levels - background_level > 0, on_levels - background_level, np.inf)
        rel = profile / span[None, :]
        group_of = np.where(rel.max(0, initial=-np.inf) >= group_threshold, rel.argmax(0) if len(rel) else -1, -1)
        how += f"; motif groups by word scan ({4 ** k:,} {k}-mers)"
    else:
        if groups is None:
            group_of = motif_groups(resp, on_levels, group_threshold, background=background_level)
        else:
            group_of = np.asarray(groups)
            if group_of.shape != (K,) or not np.issubdtype(group_of.dtype, np.integer):
                raise ArgumentError(f"groups: expected {K} ints (one group per channel), got {group_of!r}")
            _, group_of = np.unique(group_of, return_inverse=True)
        # a group is switched on with the word of its member of highest on-level
        group_words = np.stack([words[mem[np.argmax(on_levels[mem])]]
                                for mem in (np.flatnonzero(group_of == g) for g in range(group_of.max() + 1))])
    G = len(group_words)
    if G == 0:
        raise ModelError(f"interactions: no k-mer changes what the head reads from {layer!r} more than random k-mers "
                         f"do, read again on fresh random sequences (word scan); give motif words with words= or groups=")
    # Players: K channels, then G groups
    width = group_words.shape[2]
    n_slots = length // width
    if n_slots < 2:
        raise ModelError(f"interactions: the preferred words are {width} bp and the input {length} bp; two words must "
                         f"fit side by side, so the input must be at least {2 * width} bp")
    players_group = [group_of[p:p + 1][group_of[p:p + 1] >= 0] for p in range(K)] + [np.array([g]) for g in range(G)]

    # Contexts: a background sequence, non-overlapping word slots in random order, a position of the layer for
    # every channel, a coalition (chosen after the main effects)
    ctx_bg = torch.from_numpy(rng.choice(backgrounds, contexts, replace=contexts > backgrounds))
    slack = length - n_slots * width
    offsets = np.sort(rng.integers(0, slack + 1, (contexts, n_slots)), axis=1)  # uniform non-overlapping layouts
    starts = offsets + width * np.arange(n_slots)[None, :]
    starts = torch.from_numpy(np.take_along_axis(starts, rng.permuted(np.tile(np.arange(n_slots), (contexts, 1)),
                                                                      axis=1), axis=1))
    positions = torch.from_numpy(rng.integers(0, W, (contexts, K)))
    coin = torch.from_numpy(rng.random((contexts, G)) < context_on)
    cls_t = torch.as_tensor(classes_list)
    all_players = np.arange(K + G)
    words_t = torch.from_numpy(group_words).float()
    on_t = torch.from_numpy(on_levels).float()

    def evaluator(h: nn.Module, coalition: torch.Tensor) -> _Evaluator:
        return _Evaluator(body, h, shape, xb[ctx_bg], words_t, starts, on_t, positions, coalition, cls_t, device,
                          batch)

    # 1) the coalition groups: strongest alone or as a pair (on pure background contexts)
    no_coalition = torch.zeros(contexts, G, dtype=torch.bool)
    ev0 = evaluator(head, no_coalition)
    main0, logit0 = _main_effects(ev0, all_players[K:], players_group, contexts, G, squash)  # groups only
    strength = _relative_strength(main0, logit0)
    screened = np.sort(np.argsort(-strength.max(0), kind="stable")[:2 * top])
    strength = _pair_strength(ev0, screened, K, players_group, contexts, G, squash, strength)
    chosen = np.argsort(-strength.max(0), kind="stable")[:context_groups]
    coalition = torch.zeros(contexts, G, dtype=torch.bool)
    coalition[:, chosen] = coin[:, chosen]

    # 2) main effects in the real contexts, then pairs among each class's top players
    ev = evaluator(head, coalition)
    main, logit = _main_effects(ev, all_players, players_group, contexts, G, squash)
    pair_sets = []
    for lo, hi in ((0, K), (K, K + G)):
        chosen_pairs = set()
        rel = _relative_strength(main[:, lo:hi], logit[:, lo:hi])
        if lo == K:  # a group strong with one partner (step 1) is paired even when its main effect is small
            rel = np.maximum(rel, strength)
        for c in range(len(classes_list)):
            best = np.argsort(-rel[c], kind="stable")[:top]
            best = lo + np.sort(best[rel[c, best] >= min_effect])
            chosen_pairs.update((int(a), int(b)) for x, a in enumerate(best) for b in best[x + 1:])
        pair_sets.append(np.array(sorted(chosen_pairs), dtype=int).reshape(-1, 2))
    all_pairs = np.concatenate(pair_sets)
    if verbose:
        print(f"interactions: {K} channels, {G} groups ({how}); {len(pair_sets[0])} channel + {len(pair_sets[1])} "
              f"group pairs x {contexts} contexts x 4 = {4 * contexts * len(all_pairs):,} evaluations", flush=True)
    tables, se = _pair_stats(ev, all_pairs, players_group, contexts, G, squash)
    values = tables[..., 1, 1] - tables[..., 1, 0] - tables[..., 0, 1] + tables[..., 0, 0]

    # 3) p-values against the interval null |interaction| <= margin * rms(main effects of the class's top players)
    scale_c = np.array([np.sqrt(np.mean(np.sort(m ** 2)[::-1][:top])) for m in main])[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stat = (np.abs(values) - margin * scale_c) / se
    pvalues = student_t.sf(t_stat, df=max(contexts - 1, 1))
    pvalues = np.where(se > 0, pvalues, np.where(np.abs(values) > margin * scale_c, 0.0, 1.0))

    P = len(pair_sets[0])
    return Interactions(
        classes=np.asarray(classes_list), class_names=names,
        channel_names=list(channel_names or [f"ch{k}" for k in range(K)]), groups=group_of,
        main=main[:, :K], pairs=pair_sets[0], values=values[:, :P], pvalues=pvalues[:, :P], tables=tables[:, :P],
        group_main=main[:, K:], group_pairs=pair_sets[1] - K, group_values=values[:, P:],
        group_pvalues=pvalues[:, P:], group_tables=tables[:, P:], on_levels=on_levels, words=words, group_words=group_words, layer=layer,
        params=dict(at=at, scale=scale, contexts=contexts, min_effect=min_effect, context_on=context_on, context_groups=context_groups, top=top,
                    margin=margin, alpha=alpha, group_threshold=group_threshold, motif_words=motif_words, word_length=word_length, backgrounds=backgrounds,
                    background="dinucleotide shuffles of inputs" if inputs is not None else "uniform random",
                    on_levels=how, coalition_groups=chosen.tolist(), seed=seed, input_shape=list(input_shape)),
    )
