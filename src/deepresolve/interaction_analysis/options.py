"""The argument checks of :func:`~deepresolve.interaction_analysis.interactions`, all here and before any work.

:data:`PARAMETERS` declares what every parameter accepts (checked before the body runs: ``interactions`` is
declared with them); :func:`make_options` gathers the checked settings, with the checks that need two of them;
:func:`check_layer_arguments` checks those that need the layer's channels or the model's outputs, right after the
model is split. A mistake raises :class:`~deepresolve.errors.ArgumentError` with the message
``"<argument>: expected <what>, got <value>"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence, Sized

import numpy as np
import torch

from .._checks import (
    AnyOf,
    Array,
    Bool,
    Choice,
    Classes,
    Float,
    Int,
    Layer,
    Names,
    OptionalOf,
    OutputFolder,
    Seed,
    SequenceShape,
    Spec,
    check_classes,
)
from .._checks import class_names as name_classes
from .._model import Device, Model, check_device
from ..distributed import CLIENT
from ..errors import ArgumentError
from ..motifs.jaspar import JasparRelease
from ..results.interactions import FDR_FAMILIES
from ..split import ADAPTER_PARAMETERS
from .network import Network
from .words import check_word_source

#: Keyword arguments of ``interactions`` renamed in this version, old name -> new name; the old names still work,
#: with a FutureWarning. ``alpha`` was the significance level, while ``resolve``'s ``alpha`` is the decay of the
#: paper's optimiser.
RENAMED_OPTIONS: dict[str, str] = {"alpha": "significance"}

#: Sequences per forward pass when ``batch_size`` is not given.
DEFAULT_BATCH = 4096

#: The background models of ``background=``; those of :data:`FROM_INPUTS` are drawn from ``inputs``, the others
#: use no data.
BACKGROUNDS = ("uniform", "gc", "shuffle", "markov")
FROM_INPUTS = ("shuffle", "markov")


@dataclass(frozen=True)
class Options:
    """The checked settings of one analysis (see :func:`~deepresolve.interaction_analysis.interactions`).

    ``length`` is L of the one-hot input (4, L); ``scale`` is as given ("auto" is resolved by the split);
    ``motif_words`` is "scan", "filters" or "given", and then ``group_words`` holds the given words (G, 4, w)
    float32 (else None); ``inputs`` the real sequences (N, 4, L) as a float tensor, or None; ``background`` the
    background model resolved (one of :data:`BACKGROUNDS`; ``gc`` serves "gc" alone, ``markov_order`` "markov"
    alone); ``batch`` the sequences per forward pass.
    """

    length: int
    at: str
    contexts: int
    context_on: float
    context_groups: int
    top: int
    min_effect: float
    scale: str
    margin: float
    significance: float
    fdr: str
    group_threshold: float
    motif_words: str
    group_words: np.ndarray | None
    word_length: int | None
    jaspar: str | None
    inputs: torch.Tensor | None
    backgrounds: int
    background: str
    gc: float
    markov_order: int
    seed: int
    device: torch.device
    batch: int
    verbose: bool


class LayerArguments(NamedTuple):
    """The arguments checked against the split model: class indices and names, channel names, and the given
    ``words`` (K, 4, w) float32 and ``groups`` (K,) int (None when not given)."""

    classes: list[int]
    class_names: list[str]
    channel_names: list[str]
    words: np.ndarray | None
    groups: np.ndarray | None


#: What every parameter of :func:`~deepresolve.interaction_analysis.interactions` accepts.
PARAMETERS: dict[str, Spec] = dict(
    model=Model(), layer=Layer(), input_shape=SequenceShape(), classes=Classes(), at=Choice("output", "input"),
    contexts=Int(minimum=1), context_on=Float(minimum=0.0, maximum=1.0), context_groups=Int(minimum=0),
    top=Int(minimum=2), min_effect=Float(minimum=0.0), scale=Choice("auto", "probability", "logit"),
    margin=Float(minimum=0.0), significance=Float(minimum=0.0, below=1.0), fdr=Choice(*FDR_FAMILIES),
    groups=OptionalOf(Array(("K",), integer=True)), words=OptionalOf(Array(("K", 4, "w"))),
    group_threshold=Float(minimum=0.0),
    motif_words=AnyOf(Choice("filters", "scan"), Array(("G", 4, "w"), what="one-hot motif words")),
    word_length=OptionalOf(Int(minimum=2, maximum=10)), jaspar=OptionalOf(JasparRelease()),
    inputs=OptionalOf(Array(("N", 4, "L"))),
    backgrounds=Int(minimum=1), background=OptionalOf(Choice(*BACKGROUNDS)), gc=Float(above=0.0, below=1.0),
    markov_order=Int(minimum=0, maximum=10), class_names=OptionalOf(Names()), channel_names=OptionalOf(Names()),
    seed=Seed(), device=Device(), batch_size=OptionalOf(Int(minimum=1)), verbose=Bool(),
    checkpoint=OptionalOf(OutputFolder()), progress=Bool(), client=CLIENT, **ADAPTER_PARAMETERS,
)


def check_sequence_shape(input_shape: object) -> int:
    """L of a one-hot input shape (4, L)."""
    return SequenceShape().check(input_shape, "input_shape")[1]


def check_inputs(inputs: np.ndarray | torch.Tensor | None, length: int) -> torch.Tensor | None:
    """Real sequences as a float tensor (N, 4, length), each position one base (their dinucleotide shuffles need
    it); None stays None."""
    if inputs is None:
        return None
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    if x.dim() != 3 or tuple(x.shape[1:]) != (4, length) or len(x) == 0:
        raise ArgumentError(f"inputs: expected shape (N, 4, {length}), got {tuple(x.shape)}")
    if not (((x == 0) | (x == 1)).all() and (x.sum(1) == 1).all()):
        raise ArgumentError("inputs: expected one-hot sequences (one base per position, no N), got other values")
    return x


def check_background(background: str | None, inputs: Sized | None) -> str:
    """The background model: ``background``, or when None "shuffle" with ``inputs`` (N, 4, L) and "uniform"
    without. One drawn from inputs (:data:`FROM_INPUTS`) needs them; inputs given with one that uses no data are
    refused, as they would be silently ignored."""
    if background is None:
        return "uniform" if inputs is None else "shuffle"
    if background in FROM_INPUTS and inputs is None:
        raise ArgumentError(f"background: expected 'uniform' or 'gc' without inputs ({background!r} is drawn from "
                            f"inputs=, real sequences (N, 4, L)), got {background!r}")
    if background not in FROM_INPUTS and inputs is not None:
        raise ArgumentError(f"inputs: expected None with background={background!r}, which draws nothing from them "
                            f"('shuffle' and 'markov' do), got {len(inputs)} sequences")
    return background


def check_markov_order(markov_order: int, length: int) -> int:
    """``markov_order`` k below ``length``: a (k+1)-mer must fit in the inputs it is fitted on."""
    if markov_order >= length:
        raise ArgumentError(f"markov_order: expected an integer < {length} (the inputs' length; the chain is fitted "
                            f"on their (k+1)-mers), got {markov_order}")
    return markov_order


def check_motif_words(words: object, length: int) -> np.ndarray:
    """Given motif words (G, 4, w) as float32: each column one base or none (a zero column keeps the background's
    base), each word with at least one base, and w <= L // 2 (two words fit side by side)."""
    a = np.asarray(words, dtype=np.float32)
    if len(a) == 0 or a.shape[2] > length // 2 or a.shape[2] == 0:
        raise ArgumentError(f"motif_words: expected at least one word of 1 to {length // 2} bp (two must fit in "
                            f"{length} bp), got shape {a.shape}")
    columns = a.sum(1)
    if not (((a == 0) | (a == 1)).all() and ((columns == 0) | (columns == 1)).all() and (columns == 1).any(1).all()):
        raise ArgumentError("motif_words: expected one-hot words (each column one base, or all zero to keep the "
                            "background's base; at least one base per word), got other values")
    return a


def make_options(*, input_shape: tuple[int, ...], at: str, contexts: int, context_on: float, context_groups: int,
                 top: int, min_effect: float, scale: str, margin: float, significance: float, fdr: str,
                 group_threshold: float, motif_words: str | np.ndarray, word_length: int | None, jaspar: str | None,
                 inputs: np.ndarray | torch.Tensor | None, backgrounds: int, background: str | None, gc: float,
                 markov_order: int, seed: int, device: torch.device | None, batch_size: int | None,
                 verbose: bool) -> Options:
    """The settings of one analysis from the arguments of
    :func:`~deepresolve.interaction_analysis.interactions`, each already checked by :data:`PARAMETERS`; ``inputs``
    and given ``motif_words`` checked against ``input_shape``, ``background`` against ``inputs``
    (:func:`check_background`)."""
    length = input_shape[1]
    given = not isinstance(motif_words, str)
    background = check_background(background, inputs)
    return Options(
        length=length, at=at, contexts=contexts, context_on=context_on, context_groups=context_groups, top=top,
        min_effect=min_effect, scale=scale, margin=margin, significance=significance, fdr=fdr,
        group_threshold=group_threshold, motif_words="given" if given else motif_words,
        group_words=check_motif_words(motif_words, length) if given else None, word_length=word_length,
        jaspar=jaspar, inputs=check_inputs(inputs, length), backgrounds=backgrounds, background=background, gc=gc,
        markov_order=check_markov_order(markov_order, length) if background == "markov" else markov_order, seed=seed,
        device=check_device(device),
        batch=DEFAULT_BATCH if batch_size is None else batch_size, verbose=verbose,
    )


def check_layer_arguments(net: Network, layer: str, opts: Options, *, classes: Sequence[int] | int | None,
                          class_names: Sequence[str] | None, channel_names: Sequence[str] | None,
                          words: np.ndarray | None, groups: Sequence[int] | None) -> LayerArguments:
    """The arguments that need the split model ``net``, checked; default names filled in."""
    K, length = net.channels, opts.length
    chosen = check_classes(classes, net.outputs)
    names = name_classes(class_names, chosen, net.outputs)
    if channel_names is not None and len(channel_names) != K:
        raise ArgumentError(f"channel_names: expected one per channel ({K} channels of {layer!r}), "
                            f"got {len(channel_names)} channel_names")
    if words is None:
        check_word_source(net.body, layer, opts.at)
    else:
        words = np.asarray(words, dtype=np.float32)
        if words.ndim != 3 or words.shape[0] != K or words.shape[1] != 4 or not 1 <= words.shape[2] <= length:
            raise ArgumentError(f"words: expected one-hot of shape ({K}, 4, w) with w <= {length}, "
                                f"got {words.shape}")
    if groups is not None and opts.group_words is not None:
        raise ArgumentError("groups: expected None with motif_words given as words (each channel joins the group of "
                            "the word that raises it most), got groups too")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (K,) or not np.issubdtype(groups.dtype, np.integer):
            raise ArgumentError(f"groups: expected {K} ints (one group per channel), got {groups!r}")
    return LayerArguments(classes=chosen, class_names=names,
                          channel_names=[f"ch{k}" for k in range(K)] if channel_names is None else list(channel_names),
                          words=words, groups=groups)
