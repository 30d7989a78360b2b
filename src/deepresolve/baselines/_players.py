"""What the interaction baselines share: the players (words) and the declarations of the arguments, the random
contexts the words are written into, the model's outputs there, and the statistics.

A *context* is a background sequence with ``slots`` non-overlapping places for words of width w, at uniformly
random positions and in random order; player i's word is written into one of the context's places, its non-zero
columns replacing the background's bases. The marginalisation writes player i into slot 0 and j into slot 1, the
Shapley game player p into slot p: with two players both see the same contexts for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from scipy.stats import t as student_t
from torch import nn

from .._checks import (
    AnyOf,
    Array,
    BadValue,
    Bool,
    Choice,
    Classes,
    Float,
    Int,
    Names,
    OptionalOf,
    Seed,
    SequenceShape,
    Spec,
    check_classes,
)
from .._checks import class_names as name_classes
from .._model import Device, Model, check_device, forward, frozen_copy, strip_probability
from ..errors import ArgumentError, ModelError
from ..io.sequences import decode, one_hot, slot_starts
from ..results import PairScores, bh_qvalues
from ..split import ADAPTER_PARAMETERS, adapt, adapter_params

#: Sequences per forward pass when ``batch_size`` is not given.
DEFAULT_BATCH = 1024


class Words(Spec):
    """The players: one-hot words (G, 4, w), an all-zero column keeping the background's base, or DNA strings over
    A, C, G, T and N (N keeps the background's base; shorter strings are padded with N on the right); at least two.
    The function receives them as a float32 array (G, 4, w)."""

    def describe(self) -> str:
        return "one-hot words (G, 4, w) or a list of DNA strings, at least two"

    def admits(self, value: object) -> bool:
        return not isinstance(value, (str, bytes)) and (hasattr(value, "__array__") or isinstance(value, (list, tuple)))

    def check(self, value: object, argument: str) -> np.ndarray:
        name = self.name(argument)
        if not self.admits(value):
            raise self.refuse(value, argument)
        if len(value) and all(isinstance(v, str) for v in value):
            width = max(len(v) for v in value)
            words = one_hot([v.upper().ljust(width, "N") for v in value], where=f"{name}: ")
        else:
            Array(("G", 4, "w"), what="one-hot words").check(value, name)
            words = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float32)
            if not (np.isin(words, (0, 1)).all() and (words.sum(1) <= 1).all()):
                raise ArgumentError(f"{name}: expected one-hot words (each column one base, or all zero to keep the "
                                    f"background's base), got other values")
        if len(words) < 2:
            raise ArgumentError(f"{name}: expected at least two words (the players), got {len(words)}")
        empty = np.flatnonzero(words.sum((1, 2)) == 0)
        if len(empty):
            raise ArgumentError(f"{name}: expected words with at least one base each, got an empty word {empty[0]}")
        return words

    def bad_values(self, argument: str) -> list[BadValue]:
        name = self.name(argument)
        return [BadValue("ACGT", "wrong type", f"{name}: expected {self.describe()}, got str 'ACGT'"),
                BadValue(["ACGT"], "out of range", f"{name}: expected at least two words (the players), got 1"),
                BadValue(["ACGT", "AXGT"], "out of range", f"{name}: expected only A, C, G, T or N, got 'X'"),
                BadValue(np.full((2, 4, 3), 0.5), "out of range", f"{name}: expected one-hot words")]


#: The declarations of the arguments every interaction baseline takes.
PARAMETERS: dict[str, Spec] = dict(
    model=Model(), words=Words(), input_shape=SequenceShape(), classes=Classes(), class_names=OptionalOf(Names()),
    backgrounds=AnyOf(Choice("uniform"), Float(minimum=0.0, maximum=1.0),
                      Array(("N", 4, "L"), what="one-hot sequences")),
    scale=Choice("auto", "probability", "logit"), seed=Seed(), batch_size=OptionalOf(Int(minimum=1)),
    device=Device(), verbose=Bool(), **ADAPTER_PARAMETERS,
)


@dataclass(frozen=True)
class Setup:
    """The checked arguments of one run, with the model ready to score.

    ``net`` takes one-hot (N, 4, length) and returns (N, outputs) scores, a final sigmoid/softmax module removed,
    on ``device``; ``squash`` says whether the statistics take the sigmoid of the scores (the probability scale);
    ``words`` is (G, 4, w); ``backgrounds`` is "uniform", a GC fraction, or given sequences (N, 4, length);
    ``params`` records the settings every baseline shares.
    """

    net: nn.Module
    squash: bool
    classes: list[int]
    class_names: list[str]
    words: torch.Tensor
    word_names: list[str]
    length: int
    backgrounds: str | float | torch.Tensor
    device: torch.device
    batch: int
    params: dict[str, Any]


def setup(model: nn.Module, words: np.ndarray, *, input_shape: tuple[int, ...], classes: Sequence[int] | None,
          class_names: Sequence[str] | None, backgrounds: Any, scale: str, slots: int, contexts: int, seed: int,
          device: torch.device | None, batch_size: int | None, output: Any, channels_last: bool,
          fixed_inputs: dict | None) -> Setup:
    """The arguments (each already checked by :data:`PARAMETERS`) checked together: ``slots`` words side by side in
    the input, given backgrounds of the input's shape; then the model, with one probe pass for its outputs, and the
    classes against them."""
    length, width = input_shape[1], words.shape[2]
    if slots * width > length:
        raise ArgumentError(f"words: expected {slots} words of {width} bp to fit side by side in the {length}-bp "
                            f"input ({slots} x {width} <= {length}), got {len(words)} words of {width} bp")
    if not isinstance(backgrounds, (str, float)):
        seqs = (backgrounds.detach().cpu() if isinstance(backgrounds, torch.Tensor) else
                torch.as_tensor(np.asarray(backgrounds))).float()
        if tuple(seqs.shape[1:]) != (4, length) or len(seqs) == 0:
            raise ArgumentError(f"backgrounds: expected one-hot sequences of shape (N, 4, {length}), got shape "
                                f"{tuple(seqs.shape)}")
        if not (((seqs == 0) | (seqs == 1)).all() and (seqs.sum(1) <= 1).all()):
            raise ArgumentError("backgrounds: expected one-hot sequences (one base or none per position), got other "
                                "values")
        backgrounds, described = seqs, f"{len(seqs)} given sequences"
    else:
        described = "uniform random" if backgrounds == "uniform" else f"random, GC fraction {backgrounds}"
    device = check_device(device)
    net, stripped = strip_probability(frozen_copy(model))
    net = adapt(net, output, channels_last, fixed_inputs).to(device)
    probe = forward(net, torch.zeros(2, 4, length, device=device), "the model")
    if not isinstance(probe, torch.Tensor) or probe.dim() != 2:
        shape = tuple(probe.shape) if isinstance(probe, torch.Tensor) else type(probe).__name__
        raise ModelError(f"the model must return class scores of shape (N, C); it returned {shape}; choose an output "
                         f"with output=")
    outputs = probe.shape[1]
    chosen = check_classes(classes, outputs)
    squash = stripped if scale == "auto" else scale == "probability"
    params = dict(contexts=contexts, scale="probability" if squash else "logit", backgrounds=described, seed=seed,
                  input_shape=[4, length], **adapter_params(output, channels_last, fixed_inputs))
    return Setup(net=net, squash=squash, classes=chosen, class_names=name_classes(class_names, chosen, outputs),
                 words=torch.from_numpy(words), word_names=decode(words), length=length, backgrounds=backgrounds,
                 device=device, batch=DEFAULT_BATCH if batch_size is None else batch_size, params=params)


@dataclass(frozen=True)
class Contexts:
    """n random contexts: background ``sequences`` (n, 4, L) float, and ``starts`` (n, slots) int64, where each
    context's non-overlapping word places start, in random order."""

    sequences: torch.Tensor
    starts: torch.Tensor

    @property
    def n(self) -> int:
        return len(self.sequences)


def draw_contexts(rng: np.random.Generator, s: Setup, n: int, slots: int) -> Contexts:
    """``n`` contexts with ``slots`` places for the words: random backgrounds (uniform, or with the GC fraction
    given) or the given ones (all different when there are at least n, else drawn with replacement)."""
    from tangermeme.utils import random_one_hot

    if isinstance(s.backgrounds, torch.Tensor):
        seqs = s.backgrounds[torch.from_numpy(rng.choice(len(s.backgrounds), n, replace=n > len(s.backgrounds)))]
    else:
        gc = 0.5 if s.backgrounds == "uniform" else s.backgrounds
        seqs = random_one_hot((n, 4, s.length), probs=[[(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]],
                              dtype=np.float32, random_state=int(rng.integers(2 ** 32))).float()
    return Contexts(sequences=seqs, starts=torch.from_numpy(slot_starts(rng, n, s.length, s.words.shape[2], slots)))


class Scorer:
    """The model's outputs, on the run's scale, for contexts with words written into their places."""

    def __init__(self, s: Setup, contexts: Contexts):
        self.s, self.ctx = s, contexts

    @torch.no_grad()
    def __call__(self, ctx: np.ndarray, placed: np.ndarray) -> np.ndarray:
        """Outputs (rows, C) float64 of the chosen classes. ``ctx`` (rows,) is each row's context, ``placed``
        (rows, slots) the word written into each of its places (-1: none)."""
        from tangermeme.predict import predict

        s, words, width = self.s, self.s.words, self.s.words.shape[2]
        ctx, placed = torch.as_tensor(ctx), torch.as_tensor(placed)
        out = []
        for start in range(0, len(ctx), s.batch):
            c, p = ctx[start:start + s.batch], placed[start:start + s.batch]
            x = self.ctx.sequences[c].clone()
            for slot in range(p.shape[1]):
                rows = torch.nonzero(p[:, slot] >= 0).flatten()
                cols = self.ctx.starts[c[rows], slot][:, None] + torch.arange(width)[None, :]  # (r, w)
                new = words[p[rows, slot]].transpose(1, 2)  # (r, w, 4)
                x[rows[:, None], :, cols] = torch.where(new.sum(-1, keepdim=True) > 0, new, x[rows[:, None], :, cols])
            y = predict(s.net, x, batch_size=s.batch, device=s.device)[:, s.classes].double()
            out.append(torch.sigmoid(y) if s.squash else y)
        return torch.cat(out).numpy()


def all_pairs(G: int) -> np.ndarray:
    """Every pair (i < j) of G players, (G (G - 1) / 2, 2) int, in the order (0, 1), (0, 2), ..., (1, 2), ..."""
    return np.array([(i, j) for i in range(G) for j in range(i + 1, G)], dtype=np.int64).reshape(-1, 2)


def t_test(d: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the first axis of ``d`` (n, ...) and the two-sided one-sample t-test p-value of its difference from
    0; a sample without spread gives 0 (mean not 0) or 1 (mean 0).

    Values within 1e-9 ``scale`` (the largest |output|) of 0 are rounding, and count as 0: float32 outputs differ
    by 6e-8 of their size at least, while sums of them in float64 (or shapiq's weights) leave 1e-16 of it, which
    would otherwise be a difference "without spread" and get p = 0.
    """
    d = np.where(np.abs(d) <= 1e-9 * scale, 0.0, d)
    n = len(d)
    mean = d.mean(0)
    se = d.std(0, ddof=1) / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, mean / se, np.where(mean == 0, 0.0, np.copysign(np.inf, mean)))
    return mean, 2 * student_t.sf(np.abs(t), n - 1)


def pair_scores(s: Setup, method: str, values: np.ndarray, pvalues: np.ndarray, tables: np.ndarray,
                params: dict[str, Any]) -> PairScores:
    """The result of one run: ``values``, ``pvalues`` (C, P) and ``tables`` (C, P, 2, 2) of :func:`all_pairs`,
    q-values added, and every setting (the shared ones, then ``params``)."""
    return PairScores(classes=np.asarray(s.classes), class_names=s.class_names, words=s.words.numpy(),
                      word_names=s.word_names, pairs=all_pairs(len(s.words)), values=values, pvalues=pvalues,
                      qvalues=bh_qvalues(pvalues), tables=tables, method=method, params={**s.params, **params})
