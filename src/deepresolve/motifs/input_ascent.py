"""Input-space gradient ascent, shared by channel motifs and the enhanced DeepMotif baseline.

- :func:`channel_motifs` visualises a channel of a deeper layer as in the paper's DeepSEA analysis: gradient
  ascent over the channel's receptive field in input space, started from the fragments of given sequences that
  activate the channel most, then thresholded and normalised into a PWM.
- :func:`deepmotif` is the "enhanced DeepMotif" baseline: input-space gradient ascent on a class score from many
  random starts, keeping the most informative window of the best sequences.

Both penalise the optimised input with ``input_penalty * ||x||^2`` (an Adam ascent in input space; not the
feature-map lambda of :func:`deepresolve.resolve`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .._checks import Array, BadValue, Float, Int, Layer, OptionalOf, Seed, check_int, declare, renamed_arguments
from .._model import Model, frozen_copy, strip_probability
from ..errors import ArgumentError, ModelError
from ..io.keras import sequence_input
from ..split import capture
from .pwm import information_content, to_pwm


def _as_channels(h: torch.Tensor) -> torch.Tensor:
    """A layer output as (N, K, W): spatial axes merged, W = 1 for flat outputs."""
    if h.dim() == 2:
        return h[:, :, None]
    return h.reshape(h.shape[0], h.shape[1], -1)


def _layer_channels(model: nn.Module, layer: str, onehot: torch.Tensor) -> torch.Tensor:
    """``layer``'s output (N, K, W) for one-hot sequences (N, 4, L) (Keras input layouts handled)."""
    return _as_channels(capture(model, layer, sequence_input(model, onehot)))


def receptive_field(model: nn.Module, layer: str, *, length: int, position: int, n_probe: int = 8,
                    seed: int = 0) -> tuple[int, int]:
    """Input span ``[start, stop)`` that position ``position`` of ``layer``'s output depends on.

    Found as the union, over random one-hot and Gaussian probe inputs, of the input positions with a non-zero
    gradient (a ReLU can hide a position for one probe, hardly for all).
    """
    gen = torch.Generator().manual_seed(seed)
    probes = [torch.eye(4)[torch.randint(0, 4, (n_probe, length), generator=gen)].transpose(1, 2),
              torch.randn(n_probe, 4, length, generator=gen)]
    touched = np.zeros(length, dtype=bool)
    for x in probes:
        x = x.clone().requires_grad_(True)
        h = _layer_channels(model, layer, x)
        if not 0 <= position < h.shape[-1]:
            raise ArgumentError(f"position: expected a position of layer {layer!r} in [0, {h.shape[-1] - 1}], "
                                f"got {position!r}")
        (grad,) = torch.autograd.grad(h[:, :, position].sum(), x)  # leaves the model's .grad alone
        touched |= (grad.abs().sum(dim=(0, 1)) > 0).cpu().numpy()
    hits = np.flatnonzero(touched)
    if len(hits) == 0:
        raise ModelError(f"layer: expected a layer whose position {position} depends on the input, got {layer!r}, "
                         "on which no input position has any influence")
    return int(hits[0]), int(hits[-1]) + 1


def _threshold_pwm(x: np.ndarray, frac: float) -> np.ndarray:
    """The paper's heuristic: keep entries above ``frac`` of the matrix's largest value, then normalise columns."""
    x = np.clip(x, 0, None)
    cut = frac * x.max() if x.max() > 0 else 0
    return to_pwm(np.where(x >= cut, x, 0))


class Channels(Array):
    """Channel indices: a list of integers >= 0 (whether the layer has them is checked on its output)."""

    def __init__(self) -> None:
        super().__init__(("channels",), integer=True)

    def check(self, value: object, argument: str) -> list[int]:
        super().check(value, argument)
        return [check_int(c, self.name(argument), minimum=0) for c in value]

    def describe(self) -> str:
        return "a list of channel indices"

    def bad_values(self, argument: str) -> list[BadValue]:
        return [BadValue("0", "wrong type", f"{self.name(argument)}: expected a list of channel indices, got str '0'"),
                BadValue([-1], "out of range", f"{self.name(argument)}: expected an integer >= 0, got -1")]


@renamed_arguments(n_init="restarts")
@declare(model=Model(), layer=Layer(), inputs=Array(("N", 4, "L"), what="one-hot"), channels=OptionalOf(Channels()),
         restarts=Int(minimum=1), steps=Int(minimum=0), lr=Float(minimum=0), input_penalty=Float(minimum=0),
         threshold=Float(minimum=0, below=1), batch_size=Int(minimum=1), seed=Seed())
def channel_motifs(
    model: nn.Module,
    layer: str,
    inputs: np.ndarray | torch.Tensor,
    *,
    channels: Sequence[int] | None = None,
    restarts: int = 10,
    steps: int = 200,
    lr: float = 0.1,
    input_penalty: float = 0.01,
    threshold: float = 0.1,
    batch_size: int = 256,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """PWMs of what channels of ``layer`` detect, by gradient ascent over their receptive field.

    For each channel k: the ``restarts`` (sequence, position) pairs of ``inputs`` with the highest activation
    ``H[k, position]`` give initial fragments (the receptive field of that position); each fragment is optimised
    by Adam to maximise ``H[k, position] - input_penalty * ||fragment||^2`` with the rest of its sequence held fixed (it
    cannot influence ``H[k, position]``); the optimised fragments are thresholded (entries below ``threshold``
    times the largest are zeroed, negatives clipped) and normalised per column. The channel's PWM is the one of
    the fragment reaching the highest activation; all are returned in ``info``.

    Parameters
    ----------
    model : torch.nn.Module
        Takes ``(N, 4, L)`` one-hot, or is an imported Keras model (its layout is handled). It is copied: the
        caller's model is left as it was.
    layer : str
        Module name from ``model.named_modules()``.
    inputs : (N, 4, L) array
        One-hot sequences to pick the initial fragments from.
    channels : sequence of int, optional
        Channels to visualise; default all.
    restarts : int
        Fragments optimised per channel (the best ``restarts`` starts; fewer when fewer positions see a full
        receptive field). ``n_init`` is its old name, still accepted with a FutureWarning.

    Returns
    -------
    pwms : (len(channels), 4, rf) array
        ``rf`` is the receptive-field width (the whole input for a globally pooled layer).
    info : dict
        ``"channels"``, ``"receptive_field"`` (width), ``"activation"`` (len(channels), restarts) final
        activations, ``"all_pwms"`` (len(channels), restarts, 4, rf), ``"init_activation"`` (len(channels),
        restarts).
    """
    x_all = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    model = frozen_copy(model)
    N, _, L = x_all.shape
    with torch.no_grad():
        acts = torch.cat([_layer_channels(model, layer, x_all[i:i + batch_size]) for i in range(0, N, batch_size)])
    K, W = acts.shape[1], acts.shape[2]
    channels = list(range(K)) if channels is None else [check_int(c, "channels", minimum=0, maximum=K - 1)
                                                        for c in channels]
    # Receptive field of every position, and which positions see a full field (edge fields are clipped by padding).
    spans = [receptive_field(model, layer, length=L, position=p, seed=seed) for p in range(W)]
    width = max(b - a for a, b in spans)
    full = np.array([b - a == width for a, b in spans])

    torch.manual_seed(seed)
    all_pwms = np.zeros((len(channels), restarts, 4, width))
    final = np.full((len(channels), restarts), -np.inf)
    init = np.full((len(channels), restarts), -np.inf)
    for ci, k in enumerate(channels):
        a = acts[:, k, :].clone()
        a[:, torch.from_numpy(~full)] = -torch.inf
        top = torch.topk(a.reshape(-1), min(restarts, int(np.isfinite(a.numpy()).sum()))).indices
        rows, pos = (top // W).tolist(), (top % W).tolist()
        n = len(rows)
        starts = [spans[p][0] for p in pos]
        base = x_all[rows].clone()
        frag = torch.stack([base[i, :, s:s + width] for i, s in enumerate(starts)]).clone().requires_grad_(True)
        opt = torch.optim.Adam([frag], lr=lr)

        def activation(f: torch.Tensor, base=base, starts=starts, n=n, k=k, pos=pos) -> torch.Tensor:
            x = base.clone()  # this channel's starting sequences, bound now (the loop moves on to the next channel)
            for i, s in enumerate(starts):
                x[i, :, s:s + width] = f[i]
            h = _layer_channels(model, layer, x)
            return h[torch.arange(n), k, torch.tensor(pos)]

        with torch.no_grad():
            init[ci, :n] = activation(frag).cpu().numpy()
        for _ in range(steps):
            opt.zero_grad()
            objective = activation(frag) - input_penalty * (frag ** 2).sum(dim=(1, 2))
            (-objective.sum()).backward()
            opt.step()
        with torch.no_grad():
            final[ci, :n] = activation(frag).cpu().numpy()
        for i in range(n):
            all_pwms[ci, i] = _threshold_pwm(frag[i].detach().cpu().numpy(), threshold)
        if n < restarts:
            all_pwms[ci, n:] = 0.25
    best = np.argmax(final, axis=1)
    pwms = all_pwms[np.arange(len(channels)), best]
    info = {"channels": channels, "receptive_field": width, "activation": final, "init_activation": init,
            "all_pwms": all_pwms}
    return pwms, info


@declare(model=Model(), cls=Int(minimum=0), length=OptionalOf(Int(minimum=1)), n_starts=Int(minimum=1),
         steps=Int(minimum=0), lr=Float(minimum=0), input_penalty=Float(minimum=0), width=Int(minimum=1),
         n_best=Int(minimum=1), threshold=Float(minimum=0, below=1), seed=Seed())
def deepmotif(
    model: nn.Module,
    cls: int = 0,
    *,
    length: int | None = None,
    n_starts: int = 100,
    steps: int = 200,
    lr: float = 0.1,
    input_penalty: float = 0.01,
    width: int = 25,
    n_best: int = 5,
    threshold: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """Enhanced DeepMotif: class-score gradient ascent in input space from many random starts.

    Every start is a random ``(4, length)`` input (uniform in [0, 1], rather than DeepMotif's single all-0.25
    start); Adam maximises ``logit_cls(x) - input_penalty * ||x||^2``. The ``n_best`` inputs with the highest final
    class
    score are converted to PWMs like :func:`channel_motifs`' fragments (entries below ``threshold`` times the
    input's largest are zeroed, negatives clipped, columns normalised, so that positions the ascent left near zero
    become uniform rather than noise), and each is cut to its ``width``-bp window of highest total information
    content.

    Parameters
    ----------
    model : torch.nn.Module
        Scored on logits: a final Sigmoid/Softmax of an ``nn.Sequential`` is skipped. It is copied: the caller's
        model is left as it was.
    cls : int
        Output index to maximise.
    length : int, optional
        Input length; default ``model.keras_input_shape``'s sequence axis for imported Keras models.

    Returns
    -------
    pwms : (n_best, 4, width) array, best class score first.
    info : dict with ``"scores"`` (n_best,), ``"starts"`` (n_best,) window starts, ``"all_scores"`` (n_starts,).
    """
    if length is None:
        shape = getattr(model, "keras_input_shape", None)
        if shape is None:
            raise ArgumentError(f"length: expected the input length for a model that is not an imported Keras model, "
                                f"got None for a {type(model).__name__}")
        layout = model.keras_layout
        length = int(shape[-1] if layout == "th2d" else shape[-2] if layout in ("tf2d", "1d") else shape[-1])
    # the bounds that other arguments set
    width = check_int(width, "width", minimum=1, maximum=length)
    n_best = check_int(n_best, "n_best", minimum=1, maximum=n_starts)
    net, _ = strip_probability(frozen_copy(model))
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n_starts, 4, length, generator=gen).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)

    def score(v: torch.Tensor) -> torch.Tensor:
        out = net(sequence_input(net, v))
        out = out.reshape(out.shape[0], -1)
        if cls >= out.shape[1]:
            raise ArgumentError(f"cls: expected an output index in [0, {out.shape[1] - 1}] (the model has "
                                f"{out.shape[1]} outputs), got {cls}")
        return out[:, cls]

    for _ in range(steps):
        opt.zero_grad()
        (-(score(x) - input_penalty * (x ** 2).sum(dim=(1, 2))).sum()).backward()
        opt.step()
    with torch.no_grad():
        scores = score(x).cpu().numpy()
    order = np.argsort(-scores)[:n_best]
    pwms, starts = [], []
    for i in order:
        pwm = _threshold_pwm(x[i].detach().cpu().numpy(), threshold)
        ic = information_content(pwm)
        window = np.convolve(ic, np.ones(width), mode="valid")
        s = int(np.argmax(window))
        pwms.append(pwm[:, s:s + width])
        starts.append(s)
    return np.stack(pwms), {"scores": scores[order], "starts": np.array(starts), "all_scores": scores}
