"""``resolve``: the whole DeepResolve pipeline for one model and layer, with automatic lambda and resumable runs.

Every argument is checked before any work; the model is split with one forward pass; finished rows go to a
:class:`~deepresolve.store.RunStore` as they come (``checkpoint=``), so a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ._checks import (
    AnyOf,
    Array,
    BadValue,
    Bool,
    Choice,
    Classes,
    Float,
    Layer,
    Names,
    OptionalOf,
    OutputFolder,
    Shape,
    Spec,
    check_classes,
    declare,
    renamed_arguments,
    validate,
)
from ._checks import class_names as name_classes
from ._files import check_free_space, exclusive
from ._model import Device, Model, check_device, model_fingerprint
from ._progress import progress_bar
from ._provenance import package_versions
from .ascent import ASCENT_OPTIONS, Optimizer, feature_ascent, row_fivs
from .ascent.options import StepOptions, optimizer_settings, run_params, run_settings
from .distributed import CLIENT
from .errors import ArgumentError, ModelError
from .importance import summarize_fivs
from .regularization import POLICIES, check_reference_shape, choose_l2, feature_maps
from .results import Result
from .split import ADAPTER_PARAMETERS, adapt, adapter_params, make_example, split_at
from .store import RunStore


class InteractionOptions(Spec):
    """``resolve``'s ``interactions``: False, True, or a dict of keyword options of
    :func:`deepresolve.interactions` other than those ``resolve`` passes itself, each checked by its declaration."""

    def check(self, value: object, argument: str) -> dict | None:
        return _check_interactions(value)

    def describe(self) -> str:
        return "False, True or a dict of options for deepresolve.interactions"

    def bad_values(self, argument: str) -> list[BadValue]:
        return [BadValue("yes", "wrong type", "interactions: expected False, True or a dict of options"),
                BadValue({"contxts": 8}, "unknown name", "interactions: expected keyword options of "
                         "deepresolve.interactions"),
                BadValue({"contexts": 0}, "out of range", "contexts: expected an integer >= 1, got 0")]


def _ascent(name: str, optional: bool = False) -> Spec:
    spec = ASCENT_OPTIONS[name].spec
    return OptionalOf(spec) if optional else spec


@renamed_arguments(alpha="decay")
@declare(
    model=Model(), layer=Layer(), input_shape=OptionalOf(Shape()), classes=Classes(), restarts=_ascent("restarts"),
    l2=AnyOf(Choice("auto", *POLICIES), _ascent("l2")), steps=_ascent("steps", True), lr=_ascent("lr", True),
    seed=_ascent("seed"), device=Device(), batch_size=_ascent("batch_size", True), optimizer=_ascent("optimizer"),
    at=Choice("output", "input"), head=OptionalOf(AnyOf(Choice("replay"), Model())), logits=Bool(),
    init_scale=_ascent("init_scale", True),
    precision=_ascent("precision"), nonnegative=_ascent("nonnegative"),
    l2_center=OptionalOf(AnyOf(Choice("mean"), Array())), inputs=OptionalOf(Array()),
    class_names=OptionalOf(Names()), channel_names=OptionalOf(Names()), checkpoint=OptionalOf(OutputFolder()),
    checkpoint_every=Float(minimum=0.0), progress=Bool(), inconsistency=Choice("variance", "sign"),
    interactions=InteractionOptions(),
    client=CLIENT,
    keep_fims=Bool(), optimizer_options=StepOptions(), **ADAPTER_PARAMETERS,
)
def resolve(
    model: nn.Module,
    layer: str,
    *,
    input_shape: Sequence[int] | None = None,
    classes: Sequence[int] | int | None = None,
    restarts: int = 10,
    l2: float | str = "auto",
    steps: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    optimizer: Optimizer = "matched",
    at: str = "output",
    head: nn.Module | str | None = None,
    logits: bool = True,
    init_scale: float | None = None,
    precision: str = "float32",
    nonnegative: bool = False,
    l2_center: str | torch.Tensor | np.ndarray | None = None,
    inputs: torch.Tensor | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: float = 5.0,
    progress: bool = False,
    inconsistency: str = "variance",
    interactions: bool | dict = False,
    client: Any = None,
    keep_fims: bool = True,
    output: Any = None,
    channels_last: bool = False,
    fixed_inputs: dict | None = None,
    **optimizer_options,
) -> Result:
    """Run DeepResolve: FIMs by gradient ascent on ``layer``'s feature map, then FIV, IL, mixtures and OFIV.

    Parameters
    ----------
    model : nn.Module
        The trained network (left unchanged; a copy is split).
    layer : str
        Name from ``model.named_modules()``; H is its output (or its input with ``at="input"``).
        See :func:`deepresolve.list_layers`.
    input_shape : tuple, optional
        Model input shape without the batch axis, e.g. ``(4, 1000)``. Or give ``inputs``.
    classes : int or list of int, optional
        Output indices to explain; None = every output.
    restarts : int
        T, random initialisations per class (the paper uses 10).
    l2 : float or {"auto", "reach", "gradient", "prior", "norm"}
        lambda, or a policy that chooses it from the model's own scale (:mod:`deepresolve.regularization`):
        "auto" (default) = "reach", lambda = min_c ||grad S_c(0)||^2 / 16, so that every class's linearised optimum
        raises its logit by at least 8 nats (needs no inputs); "gradient" = mean_c ||grad S_c(0)||^2 / 2 (one nat
        for the mean class); "prior" = 1 / (2 v), v the per-element variance of reference maps;
        "norm" = the paper's heuristic (FIM norm = mean reference-map norm). Reference maps come from ``inputs``
        or, without them, from random one-hot sequences. The chosen value and policy are in ``result.params["l2"]``
        and ``["l2_policy"]``.
    steps, lr : optional
        Maximum steps and step size; their defaults and meaning under each optimiser are in
        :data:`deepresolve.ascent.ASCENT_OPTIONS`.
    seed : int
        Drives every random choice of the call: the ascent's starts (restart t of class c always starts from the
        same map, whatever the batching or device) and the Gaussian mixture fits.
    device : optional
        Default: CUDA when available, else CPU.
    batch_size : int, optional
        Rows (class x restart pairs) per forward/backward pass; lower it to bound memory.
    optimizer : {"matched", "bundle", "paper"}
        "matched" (default), "bundle" (about half the steps per row at l2 = 1, each somewhat dearer: with
        ``tol=1e-4`` the fastest for a many-class run there, but more steps than "matched" at small lambda) or the
        paper's decaying-step plain ascent; see :mod:`deepresolve.ascent`.
    at : {"output", "input"}
        Analyse the output (default) or the input of ``layer``.
    head : nn.Module or "replay", optional
        The network after the layer, when it cannot be split automatically; "replay" reruns the model with H in
        place of the layer's tensor, for models no tracer can follow (:func:`deepresolve.split_model`).
    logits : bool
        Score the logits before a final Sigmoid/Softmax (default, as in the paper).
    init_scale : float, optional
        Standard deviation of the random normal initialisation. Default: the policy's own scale when ``l2`` is a
        policy (so it follows the layer's scale), else 1.
    precision : {"float32", "bfloat16"}
        Run the head in bfloat16 (autocast): faster on CPUs with AMX/AVX512-BF16 and on GPUs, at about 1e-3
        relative precision of the objective.
    nonnegative : bool
        Robust option: constrain H >= 0 (the real domain of a post-ReLU map). The paper allows negatives.
    l2_center : "mean", tensor or None
        Robust option: penalise ||H - center||^2 instead of ||H||^2; "mean" uses the mean feature map of
        ``inputs``. Default None (the paper's penalty toward 0).
    inputs : (N, ...) tensor, optional
        A few real inputs (e.g. 100 training sequences) for the ``l2`` policies (instead of random sequences) and
        ``l2_center="mean"``.
    class_names : list of str, optional
        Names of every output (length = number of outputs) or of the selected classes.
    channel_names : list of str, optional
        Names of the K channels (e.g. their motifs).
    checkpoint : path, optional
        A folder (a :class:`~deepresolve.store.RunStore`) where finished rows are written as they come. A rerun
        with the same model and settings resumes from it (batch size and device may differ); one with another
        model or other settings is refused with the settings that differ. Nothing is written before the first
        rows finish. With ``interactions``, the analysis checkpoints its stages into the subfolder
        ``interactions`` (:func:`deepresolve.interactions`'s ``checkpoint``), so a rerun resumes it too.
    checkpoint_every : float
        Seconds between writes of finished rows to ``checkpoint``.
    progress : bool
        Show progress bars (with the time left) of the ascent, and of the interaction analysis' word scan and pairs.
    inconsistency : {"variance", "sign"}
        The inconsistency level: the paper's weighted variance of the FIVs (default) or its sign-disagreement part,
        (E|phi|)^2 - (E phi)^2, a robust option that ignores how much a consistently signed channel varies in size
        (see :func:`deepresolve.importance.inconsistency`).
    interactions : bool or dict
        Also measure feature interactions (an addition to the paper): True, or a dict of keyword options of
        :func:`deepresolve.interactions` (e.g. ``{"contexts": 128}``), runs it after the FIMs on the same model,
        layer, ``at``, classes, names, seed, device and ``client``, and ``inputs`` unless its ``background`` is one
        that draws nothing from them ("uniform", "gc"; by default its backgrounds are the inputs' dinucleotide
        shuffles, or uniform random sequences without inputs), and attaches the result as ``Result.interactions``
        (None by default). Its ``batch_size`` is its own (sequences per pass, default 4096; e.g.
        ``{"batch_size": 256}``): this call's ``batch_size`` counts ascent rows and is not passed on. Not with
        ``head=``.
    client : distributed.Client, optional
        Compute the ascent on a Dask cluster (:mod:`deepresolve.distributed`): the rows not yet in ``checkpoint``
        are cut into chunks of classes, one task each; every finished chunk is written to ``checkpoint`` at once,
        so a rerun resumes at chunk level. Results equal a local run's within the batching tolerance of
        :mod:`deepresolve.ascent`. ``device=None`` lets each worker choose its own device. With ``interactions``,
        the analysis' chunks of pairs are computed on the cluster too, equal to a local run's to the last bit on
        the same kind of processor (:func:`deepresolve.interactions`).
    keep_fims : bool
        Keep the FIMs in ``Result.fims`` (default). With False each finished row's map is reduced at once to its FIV
        (spatial mean, (K,)) and the full maps go only to ``checkpoint``, if given (``chunk-*.npz``, arrays
        ``rows`` and ``fims``); ``Result.fims`` is then None and the summaries come from the FIVs
        (:func:`deepresolve.importance.summarize_fivs`), equal to a run that keeps them. Memory is then O(C T K)
        instead of O(C T K W): 919 classes x 10 restarts of a 480 x 60 map are 1.06 GB of FIMs but 35 MB of FIVs.
        :meth:`Result.fims_of(cls) <deepresolve.results.Result.fims_of>` reads one class's maps back from the store
        (its folder is ``result.params["checkpoint"]``).
    output : int, str or callable, optional
        What to score when the model returns a tuple, a dict or a profile: ``1`` (bpnet-lite's counts),
        ``"human"`` (a dict key), ``"0:logsumexp"`` (a profile reduced over its positions: ``sum``, ``mean``,
        ``logsumexp``, ``bpnet``; ``"0:sum:200"`` over the central 200), or ``f(output) -> (N, C)``
        (:mod:`deepresolve.split.adapters`). Recorded in ``result.params["output"]``.
    channels_last : bool
        The model takes ``(N, L, 4)`` one-hot sequences (Enformer-style); ``input_shape`` and ``inputs`` stay
        ``(4, L)``.
    fixed_inputs : dict, optional
        Constant keyword arguments of the model's forward, tensors without the batch axis (e.g. bpnet-lite's
        ``{"X_ctl": zeros (2, L)}``); recorded by name and shape.
    **optimizer_options
        The optimiser's other settings: tol, patience; "matched" and "bundle": fiv_tol; "bundle": cuts; "paper":
        start_decay, decay (old name ``alpha``, FutureWarning), min_lr (:data:`deepresolve.ascent.ASCENT_OPTIONS`).
        A misspelt name is refused with the nearest keyword of ``resolve`` or option as a suggestion.

    Returns
    -------
    Result
    """
    started = time.perf_counter()
    # Every argument is checked (resolve.__parameters__) before any work, so a mistake costs nothing and leaves no
    # file; here the checks that need more than one argument.
    opts = optimizer_settings(optimizer, {"lr": lr, "steps": steps, **optimizer_options})
    if interactions is not None and head is not None:
        raise ArgumentError("interactions: cannot be combined with head= (the interaction analysis splits the model "
                            "itself); pass head=None or measure interactions separately")
    dev = check_device(device)
    if isinstance(l2_center, str) and inputs is None:
        raise ArgumentError(f"inputs: expected a few real inputs (N, ...) for l2_center={l2_center!r}, got None")
    adapted = adapt(model, output, channels_last, fixed_inputs)
    x = make_example(input_shape, inputs)
    if l2 in ("prior", "norm") and inputs is None:
        check_reference_shape(x.shape[1:])
    if interactions is not None:  # what resolve passes on, checked before the ascent
        from .interaction_analysis.options import FROM_INPUTS, check_background, check_inputs, check_sequence_shape

        # the inputs also serve the l2 policies: the analysis takes them only for a background drawn from them
        background = interactions.get("background")
        interaction_inputs = inputs if background is None or background in FROM_INPUTS else None
        check_background(background, interaction_inputs)
        check_inputs(interaction_inputs, check_sequence_shape(tuple(x.shape[1:])))

    body, head, h, scores = split_at(adapted, layer, x=x, at=at, logits=logits, head=head)
    feature_shape, n_outputs = tuple(h.shape[1:]), scores.shape[1]
    if len(feature_shape) == 0:
        raise ModelError(f"layer {layer!r} gives a scalar per input; DeepResolve needs channels (K,) or (K, W)")
    K = feature_shape[0]
    chosen = check_classes(classes, n_outputs)
    names = name_classes(class_names, chosen, n_outputs)
    if channel_names is not None and len(channel_names) != K:
        raise ArgumentError(f"channel_names: expected one name per channel (K = {K}), got {len(channel_names)} names")

    if isinstance(l2_center, str):
        center = feature_maps(body, inputs, dev).mean(dim=0)
    elif l2_center is not None:
        center = torch.as_tensor(np.asarray(l2_center) if not isinstance(l2_center, torch.Tensor) else l2_center,
                                 dtype=torch.float32)
        if tuple(center.shape) != feature_shape:
            raise ArgumentError(f"l2_center: expected a map of the layer's feature shape {feature_shape}, "
                                f"got shape {tuple(center.shape)}")
    else:
        center = None

    ascent_kwargs = dict(optimizer=optimizer, precision=precision, nonnegative=nonnegative, center=center, seed=seed,
                         device=dev, batch_size=batch_size, **opts)
    l2_info: dict = {}
    if isinstance(l2, str):  # a policy sets lambda, and the restarts' scale, from the layer's own scale
        choice = choose_l2(l2, head, body, feature_shape, chosen,
                           input_shape=None if inputs is not None else x.shape[1:],
                           inputs=inputs, **ascent_kwargs)
        l2, l2_info = choice.l2, choice.params()
        init_scale = choice.init_scale if init_scale is None else init_scale
    l2, init_scale = float(l2), 1.0 if init_scale is None else float(init_scale)
    ascent_kwargs["init_scale"] = init_scale
    # The ascent's settings (deepresolve.ascent.ASCENT_OPTIONS), for the run store and result.params.
    ascent_settings = {"restarts": restarts, "l2": l2,
                       **{name: value for name, value in ascent_kwargs.items() if name in ASCENT_OPTIONS}}

    C, T = len(chosen), restarts
    # The checkpoint folder is held by this run alone (a second run on it is refused) until its last rows are written.
    with ExitStack() as held:
        store = skip = None
        if checkpoint is not None:
            held.enter_context(exclusive(checkpoint, "checkpoint"))
            # every row's map reaches the store (float32), whatever keep_fims says
            check_free_space(checkpoint, C * T * int(np.prod(feature_shape)) * 4, "checkpoint", "the run's maps")
            # Everything that determines the rows; not batch_size or device, which must not change results. The
            # ascent's settings go under the keys, and to the digits, of ASCENT_OPTIONS (stores of earlier versions
            # resume).
            settings = {"model": model_fingerprint(head), "layer": layer, "at": at, "logits": logits,
                        "head_given": head is not None, "classes": chosen, **run_settings(ascent_settings),
                        "feature_shape": list(feature_shape),
                        "center": None if center is None else hashlib.sha256(center.numpy().tobytes()).hexdigest()}
            store = RunStore(checkpoint, settings, n_rows=C * T, feature_shape=feature_shape, every=checkpoint_every)
            skip = store.finished(reduce=None if keep_fims else row_fivs)

        advance = held.enter_context(progress_bar("gradient ascent", "(class, restart) pairs", C * T,
                                                  done=len(skip or {}), show=progress))
        run_ascent = feature_ascent
        if client is not None:  # chunks of classes on the cluster, each written to the store as it completes
            from .distributed import client_ascent

            run_ascent = partial(client_ascent, client, flush=store.flush if store else None)
            ascent_kwargs["device"] = device  # None: each worker picks its own
        try:
            out = run_ascent(
                head, feature_shape, chosen, restarts, l2, skip=skip,
                on_done=store.add if store else None,
                progress=advance, keep_fims=keep_fims, **ascent_kwargs,
            )
        finally:
            if store:
                store.flush()

    fims = None if out.fims is None else out.fims.reshape(C, T, K, -1).numpy().astype(np.float32, copy=False)
    summary = summarize_fivs(out.fivs, out.scores, seed=seed, inconsistency=inconsistency)
    longest = max(len(t) for t in out.trace)
    trace = np.full((C * T, longest), np.nan, dtype=np.float32)
    for r, t in enumerate(out.trace):
        trace[r, :len(t)] = t

    params = {
        "layer": layer, "at": at, **run_params(ascent_settings),
        "l2_center": None if l2_center is None else (l2_center if isinstance(l2_center, str) else "tensor"),
        "inconsistency": inconsistency, "device": str(dev), "feature_shape": list(feature_shape),
        "n_outputs": n_outputs,
        "keep_fims": keep_fims, "checkpoint": None if checkpoint is None else str(Path(checkpoint).resolve()),
        "ascent_seconds": out.seconds, "row_steps": out.row_steps, "seconds": time.perf_counter() - started,
        "versions": package_versions(("deepresolve", "torch", "numpy", "scikit-learn", "scipy")), **l2_info,
        **adapter_params(output, channels_last, fixed_inputs),
    }
    result = Result(
        classes=np.asarray(chosen), class_names=names, fims=fims, scores=out.scores,
        trace=trace.reshape(C, T, -1), steps=out.steps, layer=layer,
        channel_names=list(channel_names) if channel_names is not None else [], params=params, **summary,
    )
    if interactions is not None:
        from .interaction_analysis import interactions as measure

        result.interactions = measure(model, layer, input_shape=tuple(x.shape[1:]), classes=chosen, at=at,
                                      inputs=interaction_inputs, seed=seed, device=dev, class_names=result.class_names,
                                      channel_names=result.channel_names, output=output,
                                      channels_last=channels_last, fixed_inputs=fixed_inputs,
                                      checkpoint=None if checkpoint is None else interactions_checkpoint(checkpoint),
                                      progress=progress, client=client, **interactions)
        result.params["seconds"] = time.perf_counter() - started
    return result


#: Arguments of ``interactions`` that ``resolve`` fills in itself (not ``batch_size``: resolve's counts ascent rows,
#: the analysis's sequences per pass).
_SHARED_WITH_INTERACTIONS = ("model", "layer", "input_shape", "classes", "at", "inputs", "seed", "device",
                             "class_names", "channel_names", "output", "channels_last", "fixed_inputs", "checkpoint",
                             "progress", "client")


def interactions_checkpoint(checkpoint: str | Path) -> Path:
    """The folder, inside a run's ``checkpoint``, of its interaction analysis' checkpoint."""
    return Path(checkpoint) / "interactions"


def _check_interactions(option: object) -> dict | None:
    """The keyword options for ``interactions`` (None: not requested), checked by its declaration before any work."""
    if option is False or option is None:
        return None
    if option is True:
        return {}
    if not isinstance(option, dict):
        raise ArgumentError(f"interactions: expected False, True or a dict of options for deepresolve.interactions, "
                            f"got {type(option).__name__} {option!r}")
    from .interaction_analysis import interactions as measure
    from .interaction_analysis.options import RENAMED_OPTIONS

    accepted = set(measure.__parameters__) - set(_SHARED_WITH_INTERACTIONS)
    shared = sorted(set(option) & set(_SHARED_WITH_INTERACTIONS))
    if shared:
        raise ArgumentError(f"interactions: expected options of deepresolve.interactions other than those resolve "
                            f"passes itself ({', '.join(_SHARED_WITH_INTERACTIONS)}), got {', '.join(shared)}")
    both = [old for old, new in RENAMED_OPTIONS.items() if old in option and new in option]
    if both:
        raise ArgumentError(f"interactions: expected {RENAMED_OPTIONS[both[0]]} alone ({both[0]} is its old name), "
                            f"got both")
    # old names still work (interactions itself warns); they are not listed as expected
    unknown = sorted(str(k) for k in set(option) - accepted - set(RENAMED_OPTIONS))
    if unknown:
        raise ArgumentError(f"interactions: expected keyword options of deepresolve.interactions "
                            f"({', '.join(sorted(accepted))}), got unknown {', '.join(unknown)}")
    current = {RENAMED_OPTIONS.get(name, name): value for name, value in option.items()}
    validate(measure.__parameters__, current)  # the values too, before the ascent
    return dict(option)
