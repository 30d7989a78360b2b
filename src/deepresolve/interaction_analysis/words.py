"""Motif words: each channel's preferred word, and the word scan that finds the motifs a layer's head reads.

:class:`WordReader` writes words into random sequences and measures what the rest of the network reads from the
layer (a word's *read*, *signature* and *sensitivity*); :class:`CopyRule` says when a word is a copy of a motif by
what the network does with both; :func:`scan_words` finds one word per motif, grown to the motif's length. Words
of different lengths share one width: a zero column keeps the background base (:func:`framed`,
:func:`~.network.write_words`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from .._model import is_a
from ..errors import ArgumentError
from .network import REARRANGEMENTS, as_channels, leaf_modules, random_sequences, write_words

#: Random words whose reads are those of no motif (:meth:`WordReader.null`).
RANDOM_WORDS = 64

# modules after which a first-layer channel's largest response is still at its filter's consensus: element-wise
# and increasing over positive responses, max pooling, or reshaping
_FIRST_LAYER_FOLLOWERS = (nn.ReLU, nn.MaxPool1d, nn.Dropout, nn.Identity, nn.ELU, nn.LeakyReLU, nn.GELU,
                          nn.Softplus, nn.Sigmoid, nn.Tanh, nn.Flatten)


def first_layer_filters(body: nn.Module) -> np.ndarray | None:
    """The filters (K, 4, w) of the body's channels when the body is one Conv1d on the one-hot input (4 channels,
    no groups, no dilation), optionally followed by a BatchNorm1d (folded in: each filter times its channel's
    scale, so a channel whose scale is negative prefers its filter's least bases), then only by element-wise or
    pooling modules: a channel's largest response to any sequence is then at the consensus of its filter; else
    None."""
    leaves = leaf_modules(body)
    if not leaves or not is_a(leaves[0], nn.Conv1d) or leaves[0].in_channels != 4 or leaves[0].groups != 1:
        return None
    rest = leaves[1:]
    scale = np.ones(leaves[0].out_channels)
    if rest and is_a(rest[0], nn.BatchNorm1d) and rest[0].running_var is not None:
        bn = rest.pop(0)
        scale = (bn.weight.detach().cpu().double() if bn.affine else torch.ones(bn.num_features, dtype=torch.double))
        scale = (scale / torch.sqrt(bn.running_var.detach().cpu().double() + bn.eps)).numpy()
    if leaves[0].dilation != (1,) or not all(is_a(m, *_FIRST_LAYER_FOLLOWERS) for m in rest):
        return None
    return leaves[0].weight.detach().cpu().double().numpy() * scale[:, None, None]


def check_word_source(body: nn.Module, layer: str, at: str) -> None:
    """Refuse ``at="input"`` for a deeper layer: its preferred words come from the receptive-field ascent of
    :func:`deepresolve.motifs.channel_motifs`, which reads a module's output."""
    if at != "output" and first_layer_filters(body) is None:
        raise ArgumentError(f"at: expected 'output' for a deeper layer (its preferred words come from the "
                            f"receptive-field ascent, which reads a module's output), got {at!r}; analyse the output "
                            f"of the module before {layer!r}, or give words=")


def preferred_words(model: nn.Module, layer: str, body: nn.Module, length: int, *, seed: int = 0,
                    at: str = "output") -> tuple[np.ndarray, str]:
    """One-hot word (K, 4, w) that each channel of ``layer`` responds to most, and how it was found.

    First-layer channels (:func:`first_layer_filters`): the filter's consensus (exact maximiser), w the filter
    width. Deeper channels: the best fragment of the receptive-field ascent
    (:func:`deepresolve.motifs.channel_motifs`, 4 starts of 150 steps, picked among 64 random sequences drawn with
    ``seed``), its argmax bases; w the receptive field. A deeper layer needs ``at="output"``.
    """
    filters = first_layer_filters(body)
    if filters is not None:
        return np.eye(4, dtype=np.float32)[filters.argmax(axis=1)].transpose(0, 2, 1).copy(), "filter consensus (exact)"
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


def _centre_spread(values: np.ndarray) -> tuple[float, float]:
    """The median of ``values`` and their spread: 1.4826 MAD, or where most are equal to the median (detectors
    that fire on few words) the mean absolute deviation."""
    med = float(np.median(values))
    dev = np.abs(values - med)
    return med, float(1.4826 * np.median(dev) or np.mean(dev))


def reverse_complement(words: np.ndarray) -> np.ndarray:
    """One-hot words or PWMs (..., 4, w) in A, C, G, T order, reverse-complemented (zero columns stay zero)."""
    return np.ascontiguousarray(np.asarray(words)[..., ::-1, ::-1])


def word_span(word: np.ndarray) -> np.ndarray:
    """A word (4, w) without its zero columns at either end (those keep the background base)."""
    on = np.flatnonzero(np.asarray(word).sum(0) > 0)
    return word[:, on[0]:on[-1] + 1] if len(on) else word[:, :0]


def framed(words: list[np.ndarray], width: int) -> np.ndarray:
    """Words (4, w_i), w_i <= ``width``, each centred in ``width`` columns with zero columns around: (n, 4, width)
    float32."""
    out = np.zeros((len(words), 4, width), np.float32)
    for i, w in enumerate(words):
        lo = (width - w.shape[1]) // 2
        out[i, :, lo:lo + w.shape[1]] = w
    return out


def explained_share(word: np.ndarray, read: float, motif: np.ndarray, sensitivity: np.ndarray, motif_read: float,
                    floor: float) -> float:
    """The share of a word's read that a motif's base preferences, as the network reads them, explain.

    ``sensitivity`` (4, v) is the read of the motif's word ``motif`` (4, v; read ``motif_read``) with each base at
    each column (:meth:`WordReader.sensitivity`). Taken as additive, it predicts the read of any word aligned to
    the motif: the motif's read less what the word's bases lose against the motif's at the columns they cover
    (an uncovered column holds a random base: it loses its mean). The word (4, w; zero columns hold random bases)
    is aligned at every offset on both strands; the best prediction above ``floor`` (the read of a random word),
    divided by the word's own read above it, is returned. A shifted copy, a reverse complement, a fragment or a
    mismatched copy of the motif reads no more than the motif's preferences predict (share >= 1, or near it); a
    distinct motif reads far more than the motif's preferences give it (a share near 0), however many bases the
    two share, and a weak distinct motif too (its own low read is the denominator).

    Returns
    -------
    float >= 0 (inf for a word that reads no more than a random one).
    """
    c = sensitivity - sensitivity.mean(0)
    own = float((c * motif).sum())
    v, w = c.shape[1], word.shape[1]
    best = -np.inf
    for u in (word, reverse_complement(word)):
        scores = u.T @ c  # (w, v): word column i against motif column j
        best = max(best, max(np.trace(scores, offset=o) for o in range(-(w - 1), v)))
    predicted = max(motif_read - (own - best) - floor, 0.0)
    excess = read - floor
    return predicted / excess if excess > 0 else np.inf


class Word(NamedTuple):
    """A word (4, w) without zero end columns, its read, its sensitivity (4, w), its signature (D,) and the read
    of a random word as wide (its floor)."""

    word: np.ndarray
    read: float
    sensitivity: np.ndarray
    signature: np.ndarray
    floor: float

    @property
    def core(self) -> np.ndarray:
        """(w,) bool: the columns the read depends on, where a base change (mean over the 3 others) removes at least
        half of the read above the floor; at least w / 2 columns (the largest drops)."""
        w = self.word.shape[1]
        drop = self.read - (self.sensitivity.sum(0) - self.read) / 3  # the word's own base reads self.read
        core = drop >= 0.5 * (self.read - self.floor)
        if core.sum() < np.ceil(w / 2):
            core = np.zeros(w, bool)
            core[np.argsort(-drop, kind="stable")[:int(np.ceil(w / 2))]] = True
        return core


def carried_core(word: np.ndarray, motif: Word) -> float:
    """The largest share of the motif's core (:attr:`Word.core`) that ``word`` (4, w) carries, at any relative
    shift, on either strand: its bases at the motif's core columns (core columns shifted past the word's ends, or
    onto its zero columns, count as missing)."""
    pos = np.flatnonzero(motif.core)
    want = motif.word.argmax(0)[pos]
    best = 0
    for u in (word, reverse_complement(word)):
        w = u.shape[1]
        has = u.sum(0) > 0
        bases = u.argmax(0)
        for s in range(-motif.word.shape[1] + 1, w):
            at = pos + s
            inside = (at >= 0) & (at < w)
            best = max(best, int(((bases[at[inside]] == want[inside]) & has[at[inside]]).sum()))
    return best / max(len(pos), 1)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two signatures (0 when one is zero)."""
    n = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / n) if n > 0 else 0.0


class CopyRule(NamedTuple):
    """When a word is a copy of a motif (:meth:`explains`): ``same``, the share of the word's read the motif's
    base preferences must explain; ``core``, the share of the motif's core the word must otherwise carry;
    ``parallel``, the cosine their signatures must reach."""

    same: float
    core: float
    parallel: float

    def explains(self, motif: Word, word: np.ndarray, read: float, signature: np.ndarray, floor: float) -> bool:
        """Whether ``word`` (its ``read``, ``signature`` and ``floor`` given) is a copy of ``motif`` by what the
        network does with both: their signatures at the head's reader are near-parallel (cosine at least
        ``parallel``), and the motif's base preferences, as the network reads them, account for the word: they
        explain at least ``same`` of its read (:func:`explained_share`), or the word carries at least ``core`` of
        the bases the motif's read depends on (:func:`carried_core`)."""
        return cosine(signature, motif.signature) >= self.parallel and (
            explained_share(word, read, motif.word, motif.sensitivity, motif.read, floor) >= self.same
            or carried_core(word, motif) >= self.core)

    def copies(self, a: Word, b: Word) -> bool:
        """Whether words a and b are copies of one motif: one explains the other."""
        return (self.explains(a, b.word, b.read, b.signature, b.floor)
                or self.explains(b, a.word, a.read, a.signature, a.floor))


@dataclass(frozen=True)
class MotifWords:
    """G motif words and what the network does with them (written into the probe sequences of a
    :class:`WordReader`).

    Attributes
    ----------
    words : (G, 4, width) float32
        One-hot words, each centred in ``width`` columns; a zero column keeps the background base.
    reads : (G,) float64
        Each word's read (:meth:`WordReader.measure`).
    sensitivities : (G, 4, width) float64
        The read of the word with each base at each of its columns (0 at its zero columns).
    signatures : (G, D) float64
        The mean change each word makes at the head's reader.
    profiles : (G, K) float64
        The mean rise of each channel's largest response.
    floors : (G,) float64
        The read of a random word as wide as each word (:meth:`WordReader.floor`).
    """

    words: np.ndarray
    reads: np.ndarray
    sensitivities: np.ndarray
    signatures: np.ndarray
    profiles: np.ndarray
    floors: np.ndarray

    def __len__(self) -> int:
        return len(self.words)

    def word(self, g: int) -> Word:
        """Word g as a :class:`Word` (zero end columns cut)."""
        on = np.flatnonzero(self.words[g].sum(0) > 0)
        cut = slice(on[0], on[-1] + 1) if len(on) else slice(0, 0)
        return Word(self.words[g][:, cut], float(self.reads[g]), self.sensitivities[g][:, cut], self.signatures[g],
                    float(self.floors[g]))

    def pwms(self) -> np.ndarray:
        """(G, 4, width) PWMs of the words as the network reads them: at each column of a word, the read with each
        base above the read with the worst base, normalised to sum 1 (a column whose base the network ignores is
        uniform, one where it needs one base is that base); zero columns where the word has none."""
        on = self.words.sum(1, keepdims=True) > 0
        gain = self.sensitivities - self.sensitivities.min(1, keepdims=True)
        gain = gain + 1e-3 * max(float(gain.max(initial=0.0)), 1e-12)  # ties (no preference) become uniform
        return np.where(on, gain / gain.sum(1, keepdims=True), 0.0)

    def copies(self, rule: CopyRule) -> np.ndarray:
        """(G, G) bool: words that are copies of one motif, one explaining the other (:meth:`CopyRule.copies`); the
        diagonal is True."""
        words = [self.word(g) for g in range(len(self))]
        out = np.eye(len(self), dtype=bool)
        for g, a in enumerate(words):
            for h, b in enumerate(words[:g]):
                out[g, h] = out[h, g] = rule.copies(a, b)
        return out


class WordReader:
    """Writes words into random sequences and measures what the rest of the network reads from the layer.

    The *read* of a word is the median over sequences of the norm of the change it makes to the output of the
    head's first linear map (:func:`_head_reader`); its *signature* the mean of that change (a vector); its
    *profile* the mean rise of each channel's largest response. :meth:`measure` writes every word into the same
    ``probes`` fresh random sequences at the same places, spread evenly over the input, so that words are compared
    on equal terms and a position-dependent reader averages over the places (a shifted copy is written at much
    the same places).

    Parameters
    ----------
    body, head : nn.Module
        The model split at the layer.
    shape : tuple of int
        The layer's map shape without the batch axis.
    length : int
        L of the one-hot input.
    width : int
        The widest word (the frame every measured word is centred in).
    rng : numpy.random.Generator
        Draws the probe sequences.
    probes : int
        Probe sequences.
    device : torch.device
    batch : int
        Sequences per forward pass (whole words: at least one word's sequences).
    """

    def __init__(self, body: nn.Module, head: nn.Module, shape: tuple[int, ...], length: int, width: int, *,
                 rng: np.random.Generator, probes: int, device: torch.device, batch: int):
        self.body, self.reader, self.shape, self.device, self.batch = body, _head_reader(head), shape, device, batch
        self.length, self.width = length, width
        self.probe = random_sequences(rng, probes, length)
        self.starts = torch.from_numpy(np.round(np.linspace(0, length - width, probes)).astype(np.int64))
        self._null_seed = int(rng.integers(2 ** 32))
        self._nulls: dict[int, tuple[float, float]] = {}

    def null(self, w: int) -> tuple[float, float]:
        """The reads of random words of w bases (:data:`RANDOM_WORDS` of them, drawn once per w): their median
        (the read of no motif, a word's *floor*) and their spread (1.4826 MAD, or the mean absolute deviation
        where most read alike)."""
        if w not in self._nulls:
            rng = np.random.default_rng([self._null_seed, w])
            words = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (RANDOM_WORDS, w))].transpose(0, 2, 1)
            self._nulls[w] = _centre_spread(self.measure(words)[0])
        return self._nulls[w]

    def floor(self, w: int) -> float:
        """The read of a random word of w bases (:meth:`null`)."""
        return self.null(w)[0]

    def outlier(self, word: np.ndarray, read: float, cutoff: float) -> bool:
        """Whether a word (4, w) reads more than random words of w bases, by ``cutoff`` times their spread
        (:meth:`null`)."""
        floor, spread = self.null(word.shape[1])
        return read > floor + cutoff * spread if spread > 0 else read > floor

    @torch.no_grad()
    def read(self, base: torch.Tensor, words: torch.Tensor, starts: torch.Tensor, *, median: bool = False,
             signatures: bool = False, progress: Callable[[int], None] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Each word (n, 4, w) written into every sequence of ``base`` (B, 4, L) at ``starts`` (n, B): reads (n,),
        the mean (or ``median``) over the sequences of the norm of the change at the head's reader; signatures
        (n, D), its mean, or None; profiles (n, K), float64. ``progress(m)`` is called as each m words are read."""
        B, n = len(base), len(words)
        hb = as_channels(self.body(base.to(self.device)).float())
        zb = self.reader(hb.reshape(B, *self.shape)).flatten(1)
        ab = hb.amax(-1)
        reads, sigs, profiles = [], [], []
        step = max(1, self.batch // B)
        for s in range(0, n, step):
            m = min(step, n - s)
            x = base.repeat(m, 1, 1)  # (m * B, 4, L)
            write_words(x, torch.arange(len(x)), words[s:s + m].repeat_interleave(B, 0), starts[s:s + m].reshape(-1))
            h = as_channels(self.body(x.to(self.device)).float())
            dz = self.reader(h.reshape(len(x), *self.shape)).flatten(1) - zb.repeat(m, 1)
            norms = dz.norm(dim=1).reshape(m, B)
            reads.append((norms.median(1).values if median else norms.mean(1)).cpu())
            if signatures:
                sigs.append(dz.reshape(m, B, -1).mean(1).cpu())
            profiles.append((h.amax(-1) - ab.repeat(m, 1)).reshape(m, B, -1).mean(1).cpu())
            if progress is not None:
                progress(m)
        if not n:
            return torch.zeros(0).double(), zb.new_zeros(0, zb.shape[1]).double(), ab.new_zeros(0, ab.shape[1]).double()
        sig = torch.cat(sigs).double() if signatures else None
        return torch.cat(reads).double(), sig, torch.cat(profiles).double()

    def measure(self, words: list[np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reads (n,), signatures (n, D) and profiles (n, K) of words (4, w_i), each centred in ``width`` columns
        and written into the probe sequences at the probe places."""
        x = torch.from_numpy(framed([word_span(w) for w in words], self.width))
        read, sig, profile = self.read(self.probe, x, self.starts.repeat(len(x), 1), signatures=True)
        return read.numpy(), sig.numpy(), profile.numpy()

    def sensitivity(self, word: np.ndarray, read: float) -> np.ndarray:
        """(4, w) the read of ``word`` (4, w; its ``read`` given) with each base at each column."""
        w = word.shape[1]
        own = word.argmax(0)
        variants = [np.r_['1', word[:, :j], np.eye(4, dtype=np.float32)[:, b:b + 1], word[:, j + 1:]]
                    for j in range(w) for b in range(4) if b != own[j]]
        reads = self.measure(variants)[0]
        out = np.full((4, w), float(read))
        out[[b for j in range(w) for b in range(4) if b != own[j]], np.repeat(np.arange(w), 3)] = reads
        return out

    def describe(self, words: list[np.ndarray] | np.ndarray,
                 sensitivities: list[np.ndarray] | None = None) -> MotifWords:
        """:class:`MotifWords` of words (4, w_i): reads, signatures, profiles and the sensitivity of each (measured
        unless given, (4, w_i) each for the words' spans)."""
        spans = [word_span(w) for w in words]
        reads, sigs, profiles = self.measure(spans)
        sens = sensitivities or [self.sensitivity(w, r) for w, r in zip(spans, reads)]
        return MotifWords(words=framed(spans, self.width), reads=reads, sensitivities=framed(sens, self.width),
                          signatures=sigs, profiles=profiles, floors=np.array([self.floor(w.shape[1]) for w in spans]))

    def extend(self, word: np.ndarray, read: float, *, rise: float) -> tuple[np.ndarray, float]:
        """A word (4, w) and its read, grown base by base, on the side and with the base that raise the read most,
        while that raises it by more than ``rise`` of its read above the read of a random word as wide and by
        more than the spread of random words' reads (:meth:`null`), up to ``width`` columns."""
        eye = np.eye(4, dtype=np.float32)
        while word.shape[1] < self.width:
            floor, spread = self.null(word.shape[1])
            variants = [np.c_[eye[:, b:b + 1], word] for b in range(4)] + [np.c_[word, eye[:, b:b + 1]]
                                                                         for b in range(4)]
            reads = self.measure(variants)[0]
            best = int(np.argmax(reads))
            if reads[best] - read <= max(rise * (read - floor), spread):
                break
            word, read = variants[best], float(reads[best])
        return word, read

    def trim(self, word: np.ndarray, read: float, *, flank: float) -> tuple[np.ndarray, float, np.ndarray]:
        """A word (4, w; its ``read`` given) without the end columns whose best base change moves the read by less
        than ``flank`` of its read above a random word's (bases the read does not depend on), its read and its
        sensitivity (:meth:`sensitivity`)."""
        sens = self.sensitivity(word, read)
        depends = np.flatnonzero(sens.max(0) - sens.min(0) >= flank * (read - self.floor(word.shape[1])))
        if len(depends) and len(depends) < word.shape[1] and depends[-1] - depends[0] + 1 < word.shape[1]:
            word = word[:, depends[0]:depends[-1] + 1]
            read = float(self.measure([word])[0][0])
            sens = self.sensitivity(word, read)
        return word, read, sens


@torch.no_grad()
def scan_words(reader: WordReader, k: int, rule: CopyRule, *, seeds: np.ndarray | None = None,
               backgrounds: int = 4, rng: np.random.Generator, max_words: int = 24, cutoff: float = 4.0,
               pool: int = 1024, rise: float = 0.05, flank: float = 0.1,
               progress: Callable[[int], None] | None = None) -> tuple[MotifWords, int]:
    """Motif words of a layer: the words the network reads, grown to whole motifs, one word per motif.

    **Candidates.** Every k-mer (all 4^k) is written at a random place of ``backgrounds`` random sequences; its
    first read is the median over them of the norm of the change it makes to the output of the head's first linear
    map (:func:`_head_reader`; the layer's map itself when the head does not start with one), i.e. to what the
    rest of the network takes from the layer. Why there and not at the layer: a trained layer responds to every
    k-mer somewhat (its filters are partial matches of several motifs), but the head is trained to read the
    motifs; on five trained 3-way AND models the three planted motifs were among the top 11 6-mers of 4,096, while
    the layer's own change ranked them 1,373rd or lower. The scan needs no output class and no partner, so it finds
    motifs that act only together (an AND partner with no effect alone). K-mers whose first read is a robust
    outlier (z-score against the median and MAD, at least ``cutoff``, and at least a tenth of the largest read)
    are candidates, the ``pool`` largest; so are the channels' preferred words (``seeds``, the filters' consensus
    of a first layer): on a 1000-bp model whose layer is max-pooled over the whole input, no 6-mer beats the
    random background's own maximum (the planted motifs' 6-mers were not among the outliers), while the
    consensus of a channel that detects a motif does. Every candidate is read again on the reader's probe
    sequences (:meth:`WordReader.measure`) and kept if it still reads more than random words as wide, by
    ``cutoff`` times their spread (:meth:`WordReader.outlier`).

    **One word per motif.** In order of their reads, a candidate that is a copy of a motif found before
    (:meth:`CopyRule.explains`: its read explained by that motif's base preferences as the network reads them, or
    that motif's core carried, with near-parallel signatures) is merged into it; else it is grown and trimmed by
    its read (:meth:`WordReader.extend`, :meth:`WordReader.trim`: a word of a long motif grows base by base to
    the motif's ends, up to the channels' word width; bases the read does not depend on are cut), checked again
    against the motifs found (either way: :meth:`CopyRule.copies`), and becomes a new motif when it is still no
    copy and still an outlier, up to ``max_words`` motifs. The candidate pool is much larger than ``max_words``,
    so copies merged make room for motifs that read less (an AND partner whose words read below dozens of
    shifted copies of the other's).

    Cost: 4^k x ``backgrounds`` body passes, then P per candidate read again, per random word of each width met
    (:data:`RANDOM_WORDS`), per variant tried while growing (8 per base added) and per single-base variant of
    every word kept or grown (3 w), with P the reader's probe sequences.

    Parameters
    ----------
    reader : WordReader
        Writes words into the network's input and reads the head's first map; its width is the widest word.
    k : int
        K-mer length, at most the reader's width.
    rule : CopyRule
        When a word is a copy of a motif.
    seeds : (K, 4, w) one-hot, optional
        More candidates: the channels' preferred words (their middle ``width`` columns when wider).
    backgrounds : int
        Random sequences of the first read.
    rng : numpy.random.Generator
        Draws the random sequences and the places of the first read.
    max_words : int
        Most motifs returned.
    cutoff : float
        Robust z-score that makes a read an outlier.
    pool : int
        Most k-mers read again.
    rise : float
        A base is added while it raises the read by more than this share of the read above a random word's.
    flank : float
        End columns whose best base change moves the read by less than this share of it are trimmed.
    progress : callable, optional
        ``progress(m)``: m more k-mers had their first read (the bulk of the scan's cost).

    Returns
    -------
    words : MotifWords
        The motifs in order of discovery (of their reads); words centred in the reader's width.
    merged : int
        Candidates merged as copies of a motif.
    """
    length = reader.length
    base = random_sequences(rng, backgrounds, length)
    kmers = torch.from_numpy(np.indices((4,) * k).reshape(k, -1).T.copy())  # (4^k, k), lexicographic
    starts = torch.from_numpy(rng.integers(0, length - k + 1, (len(kmers), backgrounds)))
    eye = torch.eye(4)
    read = reader.read(base, eye[kmers].transpose(1, 2), starts, median=True, progress=progress)[0].numpy()
    med, mad = _centre_spread(read)
    with np.errstate(divide="ignore", invalid="ignore"):  # spread 0 (exact detectors): anything above the bulk...
        z = np.where(read > med, (read - med) / mad, 0.0)
    z[read < 0.1 * read.max()] = 0.0  # ...that is not negligible (a chance occurrence in one background)
    cand = np.flatnonzero(z >= cutoff)
    cand = cand[np.argsort(-read[cand], kind="stable")[:pool]]
    words = list(eye[kmers[cand]].transpose(1, 2).numpy())
    if seeds is not None:
        lo = max(0, (seeds.shape[2] - reader.width) // 2)  # a seed wider than any word: its middle
        words += [word_span(w[:, lo:lo + reader.width]) for w in seeds]
    read, sig, _ = reader.measure(words)
    # read again on the probe sequences, against random words as wide
    keep = np.array([reader.outlier(w, r, cutoff) for w, r in zip(words, read)], bool) & (read >= 0.1 * read.max(
        initial=0.0))
    chosen: list[Word] = []
    merged = 0

    def copy(word: np.ndarray, w_read: float, w_sig: np.ndarray) -> bool:
        return any(rule.explains(m, word, w_read, w_sig, reader.floor(word.shape[1])) for m in chosen)

    for c in np.flatnonzero(keep)[np.argsort(-read[keep], kind="stable")]:
        if len(chosen) == max_words:
            break
        if copy(words[c], read[c], sig[c]):
            merged += 1
            continue
        word, w_read = reader.extend(words[c], float(read[c]), rise=rise)
        if copy(word, w_read, reader.measure([word])[1][0]):
            merged += 1
            continue
        word, w_read, sens = reader.trim(word, w_read, flank=flank)
        if not reader.outlier(word, w_read, cutoff):  # nothing the network reads once trimmed
            continue
        new = Word(word, w_read, sens, reader.measure([word])[1][0], reader.floor(word.shape[1]))
        if any(rule.copies(m, new) for m in chosen):
            merged += 1
            continue
        chosen.append(new)
    return reader.describe([m.word for m in chosen], [m.sensitivity for m in chosen]), merged
