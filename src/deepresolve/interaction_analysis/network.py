"""The model split at the analysed layer, and passes of one-hot sequences through its body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from ..io.keras.modules import FromOneHot, KerasFlatten
from ..io.keras.modules import Permute as KerasPermute
from ..split import split_model


@dataclass(frozen=True)
class Network:
    """A model split at the analysed layer, both halves on ``device``.

    Attributes
    ----------
    body : nn.Module
        One-hot sequences (N, 4, L) -> the layer's map (N, *map_shape).
    head : nn.Module
        The layer's map (N, *map_shape) -> class logits (N, outputs): a final sigmoid/softmax is left out.
    map_shape : tuple of int
        The layer's map without the batch axis: (K,) or (K, ...).
    channels, positions : int
        K, and W: the product of ``map_shape[1:]`` (1 for a flat layer).
    outputs : int
        C_out, the model's outputs.
    scale : {"probability", "logit"}
        The output scale the statistics are measured on: "probability" is the sigmoid of each logit.
    device : torch.device
    """

    body: nn.Module
    head: nn.Module
    map_shape: tuple[int, ...]
    channels: int
    positions: int
    outputs: int
    scale: str
    device: torch.device

    @property
    def squash(self) -> bool:
        """Whether the statistics apply a sigmoid to the logits."""
        return self.scale == "probability"


def split_network(model: nn.Module, layer: str, *, length: int, at: str, scale: str,
                  device: torch.device) -> Network:
    """``model`` split at ``layer`` for one-hot inputs (4, length); ``scale="auto"`` resolved to the model's own:
    "probability" when it ends in a sigmoid/softmax (which the split removes from the head), else "logit"."""
    input_shape = (4, length)
    body, head = split_model(model, layer, input_shape=input_shape, at=at)
    body, head = _without_input_layout(body, input_shape).to(device), head.to(device)
    with torch.no_grad():
        probe = body(torch.zeros(2, *input_shape, device=device))
        if scale == "auto":
            _, raw = split_model(model, layer, input_shape=input_shape, at=at, logits=False)
            scale = "logit" if torch.allclose(raw.to(device)(probe), head(probe)) else "probability"
        outputs = head(probe).shape[1]
    maps = as_channels(probe)
    return Network(body=body, head=head, map_shape=tuple(probe.shape[1:]), channels=maps.shape[1],
                   positions=maps.shape[2], outputs=int(outputs), scale=scale, device=device)


def as_channels(h: torch.Tensor) -> torch.Tensor:
    """A layer's map (N, K, ...) as (N, K, W); W = 1 for a flat layer."""
    return h[:, :, None] if h.dim() == 2 else h.reshape(h.shape[0], h.shape[1], -1)


@torch.no_grad()
def layer_maps(body: nn.Module, x: torch.Tensor, device: torch.device, batch: int) -> torch.Tensor:
    """The layer's maps (N, K, W) of sequences ``x`` (N, 4, L), ``batch`` sequences per pass, on the CPU."""
    return torch.cat([as_channels(body(x[i:i + batch].to(device)).float()).cpu() for i in range(0, len(x), batch)])


def write_words(x: torch.Tensor, rows: torch.Tensor, words: torch.Tensor, starts: torch.Tensor) -> None:
    """Write ``words`` (r, 4, w) into sequences ``x`` (N, 4, L) in place: word i into row ``rows[i]`` from position
    ``starts[i]`` on. A zero column of a word keeps the sequence's base there: words of different lengths share one
    width w, padded with zero columns, and a word may leave a base inside it to the background."""
    cols = starts[:, None] + torch.arange(words.shape[-1])[None, :]  # (r, w)
    new = words.transpose(1, 2).to(x.dtype)  # (r, w, 4)
    at = (rows[:, None], slice(None), cols)
    x[at] = torch.where(new.sum(-1, keepdim=True) > 0, new, x[at])


def random_sequences(rng: np.random.Generator, n: int, length: int) -> torch.Tensor:
    """Uniform random one-hot sequences (n, 4, length)."""
    return one_hot_bases(rng.integers(0, 4, (n, length)))


def one_hot_bases(bases: np.ndarray) -> torch.Tensor:
    """Base indices 0..3 (n, L) as one-hot float sequences (n, 4, L)."""
    return torch.eye(4)[torch.from_numpy(bases)].transpose(1, 2).contiguous()


def leaf_modules(module: nn.Module) -> list[nn.Module] | None:
    """The modules of a (nested) ``nn.Sequential``, or of a traced graph that is one chain (the split of a model
    that is not a Sequential, or of one wrapped in adapters), in call order; a graph's rearranging calls
    (``x.transpose(1, 2)``, ``torch.flatten(x, 1)``) become :class:`Layout` modules. None for anything else."""
    if isinstance(module, fx.GraphModule):
        return _graph_chain(module)
    if not isinstance(module, nn.Sequential):
        return None
    out = []
    for m in module:
        inner = leaf_modules(m) if isinstance(m, (nn.Sequential, fx.GraphModule)) else [m]
        if inner is None:
            return None
        out.extend(inner)
    return out


#: Tensor methods (and torch functions of the same names) that only rearrange a tensor's elements.
_LAYOUT_CALLS = {"transpose", "permute", "reshape", "view", "flatten", "unflatten", "contiguous", "movedim",
                 "squeeze", "unsqueeze"}


class Layout(nn.Module):
    """A call of a traced graph that only rearranges its input's elements (one of ``_LAYOUT_CALLS``, constant
    arguments): ``x.transpose(1, 2)`` is ``Layout("transpose", (1, 2))``."""

    def __init__(self, name: str, args: tuple, kwargs: dict[str, Any]):
        super().__init__()
        self.name, self.args, self.kwargs = name, args, kwargs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(x, self.name)(*self.args, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join([repr(self.name), *map(repr, self.args), *(f"{k}={v!r}" for k, v in self.kwargs.items())])


#: Modules that only rearrange their input's elements (reshape, transpose, flatten in some order, or nothing).
REARRANGEMENTS = (nn.Flatten, nn.Unflatten, nn.Identity, Layout, FromOneHot, KerasFlatten, KerasPermute)


def _graph_chain(graph_module: fx.GraphModule) -> list[nn.Module] | None:
    """The modules of a traced graph in which every call takes the previous one's output alone (and constants),
    from its single input to its output; None when it is not such a chain."""
    nodes = list(graph_module.graph.nodes)
    if not nodes or nodes[0].op != "placeholder":
        return None
    previous, out = nodes[0], []
    for node in nodes[1:]:
        if node.op == "output":
            return out if node.args == (previous,) else None
        if node.all_input_nodes != [previous] or not node.args or node.args[0] is not previous:
            return None
        if node.op == "call_module" and len(node.args) == 1 and not node.kwargs:
            m = graph_module.get_submodule(node.target)
            inner = leaf_modules(m) if isinstance(m, (nn.Sequential, fx.GraphModule)) else [m]
            if inner is None:
                return None
            out.extend(inner)
        elif node.op == "call_method" and node.target in _LAYOUT_CALLS:
            out.append(Layout(node.target, node.args[1:], dict(node.kwargs)))
        elif node.op == "call_function" and getattr(node.target, "__name__", None) in _LAYOUT_CALLS and \
                getattr(torch, node.target.__name__, None) is node.target:
            out.append(Layout(node.target.__name__, node.args[1:], dict(node.kwargs)))
        else:
            return None
        previous = node
    return None


def _without_input_layout(body: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
    """The body without the rearrangements it starts with when together they hand the one-hot input on unchanged
    (a Keras model's one-hot adapter and its move back to channels first; the transposes of ``channels_last=True``
    and of the model's own first line), as an ``nn.Sequential`` of the modules after them; else the body itself.
    Why: the analysis recognises a first convolution on the one-hot input (its channels' words are their filters'
    consensus) only at the start of the body."""
    leaves = leaf_modules(body)
    if not leaves:
        return body
    probe = torch.arange(2 * int(np.prod(input_shape)), dtype=torch.float32).reshape(2, *input_shape)
    x, cut = probe, 0
    with torch.no_grad():
        for i, m in enumerate(leaves):
            if not isinstance(m, REARRANGEMENTS):
                break
            x = m(x)
            if x.shape == probe.shape and torch.equal(x, probe):
                cut = i + 1
    return nn.Sequential(*leaves[cut:]) if cut else body
