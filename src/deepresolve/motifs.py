"""What a channel detects, as a motif: filter PWMs, gradient-ascent channel motifs, JASPAR and Tomtom.

- :func:`filter_pwms` converts first-layer convolution filters to position weight matrices the way the DeepResolve
  authors did (clip negative weights, normalise each column to sum 1, all-zero columns become uniform).
- :func:`channel_motifs` visualises a channel of a deeper layer as in the paper's DeepSEA analysis:
  L2-regularised gradient ascent over the channel's receptive field in input space, started from the fragments of
  given sequences that activate the channel most, then thresholded and normalised into a PWM.
- :func:`deepmotif` is the "enhanced DeepMotif" baseline: input-space gradient ascent on a class score from many
  random starts, keeping the most informative window of the best sequences.
- :func:`jaspar_motifs`, :func:`tomtom_matches`, :func:`write_meme` / :func:`read_meme` connect PWMs to JASPAR
  (offline, via pyjaspar's bundled databases) and to memelite's Tomtom.
- :func:`motifs_main` is the ``deepresolve motifs`` command: channel PWMs to MEME plus a Tomtom table of JASPAR hits.

All PWMs are numpy arrays ``(4, width)`` in A, C, G, T order; sets of PWMs are ``(K, 4, width)`` arrays or lists.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

ALPHABET = "ACGT"


# --------------------------------------------------------------------------------------------------------------
# PWMs from numbers


def _check_pwm(pwm: np.ndarray, what: str = "pwm") -> np.ndarray:
    pwm = np.asarray(pwm, dtype=np.float64)
    if pwm.ndim != 2 or pwm.shape[0] != 4 or pwm.shape[1] == 0:
        raise ValueError(f"{what} must be a (4, width) array in A, C, G, T order; got shape {pwm.shape}")
    if not np.isfinite(pwm).all():
        raise ValueError(f"{what} holds non-finite values")
    return pwm


def to_pwm(matrix: np.ndarray) -> np.ndarray:
    """Clip negatives to 0 and normalise each column to sum 1; an all-zero column becomes 0.25 each.

    Parameters
    ----------
    matrix : (..., 4, width) array
        Filter weights, optimised inputs or counts.

    Returns
    -------
    (..., 4, width) float64 array whose columns sum to 1.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim < 2 or m.shape[-2] != 4:
        raise ValueError(f"matrix must be (..., 4, width) in A, C, G, T order; got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("matrix holds non-finite values")
    m = np.clip(m, 0, None)
    total = m.sum(axis=-2, keepdims=True)
    return np.where(total > 0, m / np.where(total > 0, total, 1), 0.25)


def information_content(pwm: np.ndarray) -> np.ndarray:
    """Information content (bits, uniform background) of every column of a (4, width) PWM; shape (width,)."""
    pwm = _check_pwm(pwm)
    p = np.clip(pwm, 1e-12, 1)
    return 2 + (pwm * np.log2(p)).sum(axis=0)


def trim_pwm(pwm: np.ndarray, min_ic: float = 0.5, min_width: int = 4) -> np.ndarray:
    """Drop edge columns whose information content is below ``min_ic`` bits.

    The kept span runs from the first to the last column with IC >= ``min_ic``; when that span is narrower than
    ``min_width`` it is widened around the most informative column (clipped to the PWM).

    Returns
    -------
    (4, width') array, a copy.
    """
    pwm = _check_pwm(pwm)
    if min_width < 1:
        raise ValueError(f"min_width must be >= 1; got {min_width}")
    ic = information_content(pwm)
    keep = np.flatnonzero(ic >= min_ic)
    if len(keep):
        lo, hi = int(keep[0]), int(keep[-1]) + 1
    else:
        lo = hi = int(np.argmax(ic))
        hi += 1
    while hi - lo < min(min_width, pwm.shape[1]):
        # grow towards the more informative neighbour
        left = ic[lo - 1] if lo > 0 else -np.inf
        right = ic[hi] if hi < pwm.shape[1] else -np.inf
        if left >= right:
            lo -= 1
        else:
            hi += 1
    return pwm[:, lo:hi].copy()


def first_conv(model: nn.Module) -> tuple[str, nn.Module]:
    """(name, module) of the first ``Conv1d``/``Conv2d`` in ``model.named_modules()`` order (TorchScript too)."""
    for name, module in model.named_modules():
        # a scripted conv is a RecursiveScriptModule that remembers its class name
        if isinstance(module, (nn.Conv1d, nn.Conv2d)) or getattr(module, "original_name", None) in ("Conv1d", "Conv2d"):
            return name, module
    raise ValueError(f"model {type(model).__name__} has no Conv1d or Conv2d module to read filters from")


def filter_weights(model: nn.Module) -> np.ndarray:
    """First-layer convolution kernels as (K, 4, width), in the direction the convolution scans the input.

    A ``Conv2d`` must have a single row (kernel ``(K, 4, 1, width)``, one-hot as ``(N, 4, 1, L)``).
    """
    name, conv = first_conv(model)
    w = conv.weight.detach().cpu().numpy().astype(np.float64)
    if w.ndim == 4:
        if w.shape[2] != 1:
            raise ValueError(f"first conv {name!r} has a {tuple(w.shape[2:])} kernel; a sequence filter needs one row")
        w = w[:, :, 0, :]
    if w.shape[1] != 4:
        raise ValueError(f"first conv {name!r} reads {w.shape[1]} input channels; a DNA filter reads 4 (A, C, G, T)")
    return w


def filter_pwms(model: nn.Module, trim: float | None = None, min_width: int = 4) -> np.ndarray | list[np.ndarray]:
    """PWMs of the first-layer convolution filters (the DeepResolve authors' conversion).

    Negative weights are clipped to 0 and every column is normalised to sum 1 (all-zero columns: 0.25 each).
    :func:`deepresolve.keras.load_keras` already undid Theano's kernel flip, so PWMs read in the direction the
    PyTorch convolution scans, left to right along the sequence.

    Parameters
    ----------
    model : torch.nn.Module
        Its first ``Conv1d``/``Conv2d`` must read 4 channels (A, C, G, T).
    trim : float, optional
        When given, trim each PWM's edge columns with information content below ``trim`` bits (:func:`trim_pwm`).

    Returns
    -------
    (K, 4, width) array, or a list of K (4, width_k) arrays when ``trim`` is given.
    """
    pwms = to_pwm(filter_weights(model))
    if trim is None:
        return pwms
    return [trim_pwm(p, trim, min_width) for p in pwms]


# --------------------------------------------------------------------------------------------------------------
# Input-space gradient ascent


class _Stop(Exception):
    pass


def _module(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    if layer not in modules or layer == "":
        names = [n for n in modules if n]
        raise ValueError(f"layer {layer!r} is not a module of the model; named modules are {names}")
    return modules[layer]


def layer_output(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """Output of module ``layer`` for input ``x`` (the forward pass stops there); keeps the autograd graph."""
    module = _module(model, layer)
    box: list[torch.Tensor] = []

    def hook(_m, _inp, out):
        box.append(out)
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not box:
        raise RuntimeError(f"layer {layer!r} was not called in the forward pass")
    return box[0]


def _model_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    from deepresolve.keras import sequence_input

    return sequence_input(model, x)


def _as_channels(h: torch.Tensor) -> torch.Tensor:
    """A layer output as (N, K, W): spatial axes merged, W = 1 for flat outputs."""
    if h.dim() == 2:
        return h[:, :, None]
    return h.reshape(h.shape[0], h.shape[1], -1)


def receptive_field(model: nn.Module, layer: str, length: int, position: int, n_probe: int = 8, seed: int = 0) -> tuple[int, int]:
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
        h = _as_channels(layer_output(model, layer, _model_input(model, x)))
        if not 0 <= position < h.shape[-1]:
            raise ValueError(f"position {position} is outside layer {layer!r}'s {h.shape[-1]} positions")
        h[:, :, position].sum().backward()
        touched |= (x.grad.abs().sum(dim=(0, 1)) > 0).numpy()
    hits = np.flatnonzero(touched)
    if len(hits) == 0:
        raise ValueError(f"no input position influences position {position} of layer {layer!r}")
    return int(hits[0]), int(hits[-1]) + 1


def _threshold_pwm(x: np.ndarray, frac: float) -> np.ndarray:
    """The paper's heuristic: keep entries above ``frac`` of the matrix's largest value, then normalise columns."""
    x = np.clip(x, 0, None)
    cut = frac * x.max() if x.max() > 0 else 0
    return to_pwm(np.where(x >= cut, x, 0))


def channel_motifs(
    model: nn.Module,
    layer: str,
    sequences: np.ndarray | torch.Tensor,
    channels: Sequence[int] | None = None,
    n_init: int = 10,
    steps: int = 200,
    lr: float = 0.1,
    l2: float = 0.01,
    threshold: float = 0.1,
    batch_size: int = 256,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """PWMs of what channels of ``layer`` detect, by gradient ascent over their receptive field.

    For each channel k: the ``n_init`` (sequence, position) pairs of ``sequences`` with the highest activation
    ``H[k, position]`` give initial fragments (the receptive field of that position); each fragment is optimised
    by Adam to maximise ``H[k, position] - l2 * ||fragment||^2`` with the rest of its sequence held fixed (it
    cannot influence ``H[k, position]``); the optimised fragments are thresholded (entries below ``threshold``
    times the largest are zeroed, negatives clipped) and normalised per column. The channel's PWM is the one of
    the fragment reaching the highest activation; all are returned in ``info``.

    Parameters
    ----------
    model : torch.nn.Module
        Takes ``(N, 4, L)`` one-hot, or is an imported Keras model (its layout is handled).
    layer : str
        Module name from ``model.named_modules()``.
    sequences : (N, 4, L) array
        One-hot sequences to pick the initial fragments from.
    channels : sequence of int, optional
        Channels to visualise; default all.

    Returns
    -------
    pwms : (len(channels), 4, rf) array
        ``rf`` is the receptive-field width (the whole input for a globally pooled layer).
    info : dict
        ``"channels"``, ``"receptive_field"`` (width), ``"activation"`` (len(channels), n_init) final activations,
        ``"all_pwms"`` (len(channels), n_init, 4, rf), ``"init_activation"`` (len(channels), n_init).
    """
    x_all = torch.as_tensor(np.asarray(sequences), dtype=torch.float32)
    if x_all.dim() != 3 or x_all.shape[1] != 4:
        raise ValueError(f"sequences must be one-hot (N, 4, L); got shape {tuple(x_all.shape)}")
    if n_init < 1 or steps < 0 or lr <= 0 or l2 < 0 or not 0 <= threshold < 1:
        raise ValueError(f"need n_init >= 1, steps >= 0, lr > 0, l2 >= 0, 0 <= threshold < 1; got "
                         f"{n_init}, {steps}, {lr}, {l2}, {threshold}")
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    N, _, L = x_all.shape
    with torch.no_grad():
        acts = torch.cat([_as_channels(layer_output(model, layer, _model_input(model, x_all[i:i + batch_size])))
                          for i in range(0, N, batch_size)])
    K, W = acts.shape[1], acts.shape[2]
    channels = list(range(K)) if channels is None else [int(c) for c in channels]
    bad = [c for c in channels if not 0 <= c < K]
    if bad:
        raise ValueError(f"channels {bad} are outside layer {layer!r}'s {K} channels")
    # Receptive field of every position, and which positions see a full field (edge fields are clipped by padding).
    spans = [receptive_field(model, layer, L, p, seed=seed) for p in range(W)]
    width = max(b - a for a, b in spans)
    full = np.array([b - a == width for a, b in spans])

    torch.manual_seed(seed)
    all_pwms = np.zeros((len(channels), n_init, 4, width))
    final = np.full((len(channels), n_init), -np.inf)
    init = np.full((len(channels), n_init), -np.inf)
    for ci, k in enumerate(channels):
        a = acts[:, k, :].clone()
        a[:, torch.from_numpy(~full)] = -torch.inf
        top = torch.topk(a.reshape(-1), min(n_init, int(np.isfinite(a.numpy()).sum()))).indices
        rows, pos = (top // W).tolist(), (top % W).tolist()
        n = len(rows)
        starts = [spans[p][0] for p in pos]
        base = x_all[rows].clone()
        frag = torch.stack([base[i, :, s:s + width] for i, s in enumerate(starts)]).clone().requires_grad_(True)
        opt = torch.optim.Adam([frag], lr=lr)
        mask = torch.zeros(n, 1, L)
        for i, s in enumerate(starts):
            mask[i, 0, s:s + width] = 1

        def activation(f: torch.Tensor) -> torch.Tensor:
            x = base.clone()
            for i, s in enumerate(starts):
                x[i, :, s:s + width] = f[i]
            h = _as_channels(layer_output(model, layer, _model_input(model, x)))
            return h[torch.arange(n), k, torch.tensor(pos)]

        with torch.no_grad():
            init[ci, :n] = activation(frag).numpy()
        for _ in range(steps):
            opt.zero_grad()
            objective = activation(frag) - l2 * (frag ** 2).sum(dim=(1, 2))
            (-objective.sum()).backward()
            opt.step()
        with torch.no_grad():
            final[ci, :n] = activation(frag).numpy()
        for i in range(n):
            all_pwms[ci, i] = _threshold_pwm(frag[i].detach().numpy(), threshold)
        if n < n_init:
            all_pwms[ci, n:] = 0.25
    best = np.argmax(final, axis=1)
    pwms = all_pwms[np.arange(len(channels)), best]
    info = {"channels": channels, "receptive_field": width, "activation": final, "init_activation": init,
            "all_pwms": all_pwms}
    return pwms, info


def deepmotif(
    model: nn.Module,
    target: int = 0,
    length: int | None = None,
    n_starts: int = 100,
    steps: int = 200,
    lr: float = 0.1,
    l2: float = 0.01,
    width: int = 25,
    top: int = 5,
    threshold: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """Enhanced DeepMotif: class-score gradient ascent in input space from many random starts.

    Every start is a random ``(4, length)`` input (uniform in [0, 1], rather than DeepMotif's single all-0.25
    start); Adam maximises ``logit_target(x) - l2 * ||x||^2``. The ``top`` inputs with the highest final class
    score are converted to PWMs like :func:`channel_motifs`' fragments (entries below ``threshold`` times the
    input's largest are zeroed, negatives clipped, columns normalised, so that positions the ascent left near zero
    become uniform rather than noise), and each is cut to its ``width``-bp window of highest total information
    content.

    Parameters
    ----------
    model : torch.nn.Module
        Scored on logits: a final ``nn.Sigmoid``/``nn.Softmax`` module of an ``nn.Sequential`` is skipped.
    target : int
        Output index to maximise.
    length : int, optional
        Input length; default ``model.keras_input_shape``'s sequence axis for imported Keras models.

    Returns
    -------
    pwms : (top, 4, width) array, best class score first.
    info : dict with ``"scores"`` (top,), ``"starts"`` (top,) window starts, ``"all_scores"`` (n_starts,).
    """
    if length is None:
        shape = getattr(model, "keras_input_shape", None)
        if shape is None:
            raise ValueError("length is required for a model that is not an imported Keras model")
        layout = getattr(model, "keras_layout")
        length = int(shape[-1] if layout == "th2d" else shape[-2] if layout in ("tf2d", "1d") else shape[-1])
    if not 1 <= width <= length or not 1 <= top <= n_starts:
        raise ValueError(f"need 1 <= width <= length ({length}) and 1 <= top <= n_starts ({n_starts}); "
                         f"got width={width}, top={top}")
    net = model
    if isinstance(model, nn.Sequential) and isinstance(model[-1], (nn.Sigmoid, nn.Softmax)):
        net = model[:-1]
        for attr in ("keras_layout", "keras_input_shape", "onehot_input"):
            if hasattr(model, attr):
                setattr(net, attr, getattr(model, attr))
    net = net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n_starts, 4, length, generator=gen).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)

    def score(v: torch.Tensor) -> torch.Tensor:
        out = net(_model_input(net, v))
        out = out.reshape(out.shape[0], -1)
        if not 0 <= target < out.shape[1]:
            raise ValueError(f"target {target} is outside the model's {out.shape[1]} outputs")
        return out[:, target]

    for _ in range(steps):
        opt.zero_grad()
        (-(score(x) - l2 * (x ** 2).sum(dim=(1, 2))).sum()).backward()
        opt.step()
    with torch.no_grad():
        scores = score(x).numpy()
    order = np.argsort(-scores)[:top]
    pwms, starts = [], []
    for i in order:
        pwm = _threshold_pwm(x[i].detach().numpy(), threshold)
        ic = information_content(pwm)
        window = np.convolve(ic, np.ones(width), mode="valid")
        s = int(np.argmax(window))
        pwms.append(pwm[:, s:s + width])
        starts.append(s)
    return np.stack(pwms), {"scores": scores[order], "starts": np.array(starts), "all_scores": scores}


# --------------------------------------------------------------------------------------------------------------
# MEME files, JASPAR, Tomtom


def write_meme(pwms: Iterable[np.ndarray] | np.ndarray, names: Sequence[str], path: str | Path) -> Path:
    """Write PWMs ((4, width) each, A, C, G, T) to a MEME-format file (memelite's writer).

    Parameters
    ----------
    names : sequence of str
        One unique motif name per PWM (the rest of each ``MOTIF`` line, e.g. ``"ch3"`` or ``"MA0139.1 CTCF"``).
    """
    from memelite.io import write_meme as _write

    pwms = [_check_pwm(p, f"pwm {i}") for i, p in enumerate(pwms)]
    names = [str(n) for n in names]
    if len(names) != len(pwms):
        raise ValueError(f"got {len(pwms)} PWMs but {len(names)} names")
    if len(set(names)) != len(names):
        raise ValueError("motif names must be unique")
    if any(not n.strip() or "\n" in n for n in names):
        raise ValueError("motif names must be non-empty single lines")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(str(path), dict(zip(names, pwms)))
    return path


def read_meme(path: str | Path) -> dict[str, np.ndarray]:
    """Read a MEME-format file: ``{name: (4, width) PWM}`` in file order."""
    from memelite.io import read_meme as _read

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"MEME file {str(path)!r} does not exist")
    return {k: np.asarray(v, dtype=np.float64) for k, v in _read(str(path)).items()}


@lru_cache(maxsize=8)
def _jaspar(release: str, collection: str, tax_group: str | None) -> tuple[tuple[str, np.ndarray], ...]:
    from pyjaspar import jaspar_releases, jaspardb

    releases = list(jaspar_releases)  # checked here: jaspardb() only prints on an unknown release
    if release not in releases:
        raise ValueError(f"JASPAR release {release!r} is not bundled with pyjaspar; available: {', '.join(releases)}")
    db = jaspardb(release=release)
    kwargs = {"collection": collection}
    if tax_group is not None:
        kwargs["tax_group"] = [tax_group]
    motifs = db.fetch_motifs(**kwargs)
    if not motifs:
        raise ValueError(f"{release} has no motifs in collection {collection!r}, tax group {tax_group!r}")
    out = []
    for m in motifs:
        counts = np.array([m.counts[b] for b in ALPHABET], dtype=np.float64)
        out.append((f"{m.matrix_id} {m.name}", to_pwm(counts)))
    return tuple(out)


def jaspar_motifs(release: str = "JASPAR2024", collection: str = "CORE", tax_group: str | None = "vertebrates") -> dict[str, np.ndarray]:
    """JASPAR motifs as PWMs, offline from pyjaspar's bundled SQLite databases.

    Only the latest version of each matrix is returned. JASPAR2016 (519 CORE vertebrate matrices) is the bundled
    release closest to the JASPAR 2015 set of the paper.

    Returns
    -------
    dict
        ``"<matrix id> <name>"`` (e.g. ``"MA0139.1 CTCF"``) → (4, width) PWM, columns summing to 1.
    """
    return {k: v.copy() for k, v in _jaspar(release, collection, tax_group)}


def tomtom_matches(
    pwms: Sequence[np.ndarray] | np.ndarray,
    targets: dict[str, np.ndarray],
    names: Sequence[str] | None = None,
    top: int | None = None,
    n_jobs: int = -1,
) -> pd.DataFrame:
    """Tomtom similarity of every query PWM to every target (memelite's implementation).

    Parameters
    ----------
    pwms : sequence of (4, width) arrays
        Queries.
    targets : dict
        Name → (4, width) PWM, e.g. :func:`jaspar_motifs`. Tomtom's null distribution is built from the target
        columns, so use a whole database (memelite warns below 25 targets).
    names : sequence of str, optional
        Query names; default ``"0"``, ``"1"``, ...
    top : int, optional
        Keep only each query's ``top`` best targets.

    Returns
    -------
    pandas.DataFrame
        One row per (query, target): ``query``, ``target``, ``p_value``, ``q_value`` (Benjamini–Hochberg over the
        query's targets), ``score``, ``offset``, ``overlap``, ``strand`` ("+" or "-"), ``rank`` (1 = best),
        sorted by query then rank.
    """
    from memelite.tomtom import tomtom

    queries = [_check_pwm(p, f"query {i}") for i, p in enumerate(pwms)]
    if not queries:
        raise ValueError("no query PWMs given")
    if not targets:
        raise ValueError("no target motifs given")
    names = [str(i) for i in range(len(queries))] if names is None else [str(n) for n in names]
    if len(names) != len(queries):
        raise ValueError(f"got {len(queries)} PWMs but {len(names)} names")
    tnames = list(targets)
    tpwms = [_check_pwm(targets[t], f"target {t!r}") for t in tnames]
    p, scores, offsets, overlaps, strands = tomtom(queries, tpwms, n_jobs=n_jobs)[:5]
    rows = []
    for i, q in enumerate(names):
        pv = np.clip(p[i], 0, 1)
        order = np.argsort(pv, kind="stable")
        m = len(pv)
        # Benjamini–Hochberg q-values over this query's targets
        ranked = pv[order] * m / np.arange(1, m + 1)
        qv_sorted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1)
        qv = np.empty(m)
        qv[order] = qv_sorted
        keep = order if top is None else order[:top]
        for r, j in enumerate(keep, start=1):
            rows.append({"query": q, "target": tnames[j], "p_value": float(pv[j]), "q_value": float(qv[j]),
                         "score": float(scores[i, j]), "offset": int(offsets[i, j]), "overlap": int(overlaps[i, j]),
                         "strand": "+" if int(strands[i, j]) == 0 else "-", "rank": r})
    return pd.DataFrame(rows)


def _load_sequences(sequences: str | Path | np.ndarray) -> np.ndarray:
    """One-hot (N, 4, L) from an array, a ``.npy``/``.npz`` file or a FASTA file of equal-length sequences."""
    if isinstance(sequences, np.ndarray):
        return sequences
    path = Path(sequences)
    if not path.exists():
        raise FileNotFoundError(f"sequences file {str(path)!r} does not exist")
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".npz":
        data = np.load(path)
        return data[data.files[0]]
    seqs, cur = [], []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            if cur:
                seqs.append("".join(cur))
            cur = []
        elif line.strip():
            cur.append(line.strip().upper())
    if cur:
        seqs.append("".join(cur))
    if not seqs or len({len(s) for s in seqs}) != 1:
        raise ValueError(f"{str(path)!r} must hold FASTA sequences of one common length")
    lut = {b: i for i, b in enumerate(ALPHABET)}
    out = np.zeros((len(seqs), 4, len(seqs[0])), dtype=np.float32)
    for n, s in enumerate(seqs):
        for i, ch in enumerate(s):
            if ch in lut:  # N and other codes stay all-zero
                out[n, lut[ch], i] = 1
    return out


def motifs_main(
    model_path: str | Path,
    out_dir: str | Path,
    layer: str | None = None,
    sequences: str | Path | np.ndarray | None = None,
    jaspar_release: str = "JASPAR2024",
    top: int = 5,
) -> pd.DataFrame:
    """Channel PWMs of a model → MEME file and a Tomtom table of their best JASPAR matches.

    Parameters
    ----------
    model_path : path
        Anything :func:`deepresolve.keras.load_model` reads.
    out_dir : path
        Receives ``channels.meme`` and ``tomtom_<release>.tsv``.
    layer : str, optional
        None: the first-layer convolution filters (:func:`filter_pwms`). Otherwise a module name whose channels are
        visualised by :func:`channel_motifs`, which then needs ``sequences``.
    sequences : path or (N, 4, L) array, optional
        One-hot sequences (``.npy``, ``.npz`` or FASTA) to initialise the channel ascent from.
    jaspar_release : str
        A pyjaspar release (CORE vertebrates).
    top : int
        JASPAR matches kept per channel.

    Returns
    -------
    pandas.DataFrame
        The Tomtom table written to the TSV.
    """
    from deepresolve.keras import load_model

    if top < 1:
        raise ValueError(f"top must be >= 1; got {top}")
    model = load_model(model_path)
    if layer is None:
        pwms = list(filter_pwms(model))
    else:
        if sequences is None:
            raise ValueError(f"layer {layer!r} given without sequences: channel motifs start from sequence fragments")
        pwms = list(channel_motifs(model, layer, _load_sequences(sequences))[0])
    names = [f"ch{k}" for k in range(len(pwms))]
    out_dir = Path(out_dir)
    write_meme(pwms, names, out_dir / "channels.meme")
    df = tomtom_matches(pwms, jaspar_motifs(jaspar_release), names=names, top=top)
    df.to_csv(out_dir / f"tomtom_{jaspar_release}.tsv", sep="\t", index=False)
    return df
