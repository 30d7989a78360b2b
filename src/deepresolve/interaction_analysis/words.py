"""Motif words: each channel's preferred word, and the word scan that finds the motifs a layer's head reads."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._model import is_a
from ..errors import ArgumentError
from .network import REARRANGEMENTS, as_channels, leaf_modules, random_sequences

# modules after which a first-layer channel's largest response is still at its filter's consensus: element-wise
# and increasing over positive responses, max pooling, or reshaping
_FIRST_LAYER_FOLLOWERS = (nn.ReLU, nn.MaxPool1d, nn.Dropout, nn.Identity, nn.ELU, nn.LeakyReLU, nn.GELU,
                          nn.Softplus, nn.Sigmoid, nn.Tanh, nn.Flatten)


def first_layer_conv(body: nn.Module) -> nn.Conv1d | None:
    """The convolution when the body is one Conv1d on the one-hot input (4 channels, no groups, no dilation)
    followed only by element-wise or pooling modules (then a channel's largest response to any sequence is its
    filter's consensus); else None."""
    leaves = leaf_modules(body)
    if not leaves or not is_a(leaves[0], nn.Conv1d) or leaves[0].in_channels != 4 or leaves[0].groups != 1:
        return None
    if leaves[0].dilation != (1,) or not all(is_a(m, *_FIRST_LAYER_FOLLOWERS) for m in leaves[1:]):
        return None
    return leaves[0]


def check_word_source(body: nn.Module, layer: str, at: str) -> None:
    """Refuse ``at="input"`` for a deeper layer: its preferred words come from the receptive-field ascent of
    :func:`deepresolve.motifs.channel_motifs`, which reads a module's output."""
    if at != "output" and first_layer_conv(body) is None:
        raise ArgumentError(f"at: expected 'output' for a deeper layer (its preferred words come from the "
                            f"receptive-field ascent, which reads a module's output), got {at!r}; analyse the output "
                            f"of the module before {layer!r}, or give words=")


def preferred_words(model: nn.Module, layer: str, body: nn.Module, length: int, *, seed: int = 0,
                    at: str = "output") -> tuple[np.ndarray, str]:
    """One-hot word (K, 4, w) that each channel of ``layer`` responds to most, and how it was found.

    First-layer channels (:func:`first_layer_conv`): the filter's consensus (exact maximiser), w the filter width.
    Deeper channels: the best fragment of the receptive-field ascent (:func:`deepresolve.motifs.channel_motifs`,
    4 starts of 150 steps, picked among 64 random sequences drawn with ``seed``), its argmax bases; w the
    receptive field. A deeper layer needs ``at="output"``.
    """
    conv = first_layer_conv(body)
    if conv is not None:
        wts = conv.weight.detach().cpu().numpy()
        return np.eye(4, dtype=np.float32)[wts.argmax(axis=1)].transpose(0, 2, 1).copy(), "filter consensus (exact)"
    check_word_source(body, layer, at)
    from ..motifs import channel_motifs

    rng = np.random.default_rng(seed)
    seqs = random_sequences(rng, 64, length).numpy()
    _, info = channel_motifs(model, layer, seqs, restarts=4, steps=150, seed=seed)
    best = info["activation"].argmax(axis=1)
    frags = info["all_pwms"][np.arange(len(best)), best]  # (K, 4, rf), columns normalised
    return np.eye(4, dtype=np.float32)[frags.argmax(axis=1)].transpose(0, 2, 1).copy(), "receptive-field ascent"


def _head_reader(head: nn.Module) -> nn.Module:
    """The head up to and including its first linear map (Linear or convolution), after any reshaping or dropout:
    what the rest of the network reads from the layer. When the head does not start that way, the layer itself
    (an identity on the head's input): the head's output would miss a motif that acts only with partners."""
    leaves = leaf_modules(head) or []
    for i, m in enumerate(leaves):
        if is_a(m, nn.Linear, nn.Conv1d, nn.Conv2d):
            return nn.Sequential(*leaves[:i + 1])
        if not is_a(m, nn.Dropout, *REARRANGEMENTS):
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
    largest response (n, K). A pass holds whole k-mers, as many as fit in ``batch`` sequences (at least one: B)."""
    B, k = len(base), kmers.shape[1]
    hb = as_channels(body(base.to(device)).float())
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
        h = as_channels(body(x.to(device)).float())
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
    change it makes to the output of the head's first linear map (:func:`_head_reader`; the layer's map itself
    when the head does not start with one), i.e. to what the rest of the network takes from the layer. Why there
    and not at the layer: a trained layer responds to every k-mer somewhat (its filters are partial matches of
    several motifs), but the head is trained to read the motifs; on five trained 3-way AND models the three
    planted motifs were among the top 11 6-mers of 4,096 (the others: their shifted copies), while the layer's
    own change ranked them 1,373rd or lower. The scan needs no output class and no partner motif, so it finds
    motifs that act only together (an AND's members have no main effect).

    K-mers whose read is an outlier (robust z-score, median and MAD, at least ``cutoff``; and at least a tenth of
    the largest read) are read again on ``core_backgrounds`` fresh random sequences and kept if still an outlier
    against the first reads' median and MAD (and at least a tenth of the largest second read): with 4
    backgrounds the largest of 4^k reads include flukes, k-mers whose placements completed a motif with the
    flanks, and inflated chimeras of two motifs' fragments (on a trained NOT model a GCTC..-fragment chimera went
    from z 19.5 to 7.2 on fresh backgrounds and ranked below the real GCTCAT word, 16.6). In order of this second
    read, a k-mer is a copy of an earlier word when, at some shift, it has that word's bases at ``same`` (3/4) or
    more of the word's *core* positions (core positions shifted past its end count as missing): mismatched
    copies, shifted copies, fragments at the k-mer's edge; else it starts a new word, up to ``max_words``. A
    word's *core* is the positions its read depends on: where a single-base change (mean over the 3 others, read
    on the same fresh sequences) removes at least half of its read above the median k-mer's; at least k / 2
    positions (the largest drops). Why the core: a word's flanks are whatever k-mer read highest, and two motifs
    can share a run of bases (set I's CGCTTG and GCTCAT share CGCT when GCTCAT follows a C); a rule on whole
    words (6 of 8 bases, or a shared run of 4) merged set I's CGCTTG and GCTCAT words into one group on 2 of its
    5 benchmark models (one kept only a fragment, GCTTGCGC, as CGCTTG's word; the other no GCTCAT word at all).
    Why by sequence and not by the channels a k-mer excites: trained filters are partial matches of several
    motifs, so two motifs excite much the same channels (cosine 0.8 between the channel profiles of two planted
    motifs of a trained 3-way AND model).

    Cost: 4^k x ``backgrounds`` body passes (one sequence each), then ``core_backgrounds`` per outlier and
    ``core_backgrounds`` x 3k per word kept (its core).

    Parameters
    ----------
    body, head : nn.Module
        The model split at the layer (:class:`~deepresolve.interaction_analysis.network.Network`).
    shape : tuple of int
        The layer's map shape without the batch axis (what ``head`` takes).
    length : int
        L of the one-hot input (4, L).
    k : int
        Word length, at most L.
    backgrounds : int
        Random sequences of the first read.
    rng : numpy.random.Generator
        Draws the random sequences and the places the k-mers are written at.
    device : torch.device
    batch : int
        Sequences per forward pass; a pass holds whole k-mers (at least one k-mer's ``backgrounds``, or
        ``core_backgrounds`` on the second read).
    max_words : int
        Most words returned.
    cutoff : float
        Robust z-score that makes a read an outlier.
    same : float
        Share of an earlier word's core that makes a k-mer its copy.
    core_backgrounds : int
        Fresh random sequences of the second read and of the cores.

    Returns
    -------
    words : (M, 4, k) float32 one-hot
        M <= ``max_words``, in order of their second read.
    reads : (M,) float
        Their second reads.
    profiles : (M, K) float
        Rise of each channel's largest response over the fresh random sequences' when the word is written in.
    """
    reader = _head_reader(head)
    base = random_sequences(rng, backgrounds, length)
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
    core_base = random_sequences(rng, core_backgrounds, length)
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


