"""The model split at the analysed layer, and passes of one-hot sequences through its body."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

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
    body, head = body.to(device), head.to(device)
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
    return torch.eye(4)[torch.from_numpy(rng.integers(0, 4, (n, length)))].transpose(1, 2).contiguous()


def leaf_modules(module: nn.Module) -> list[nn.Module] | None:
    """The modules of a (nested) ``nn.Sequential`` in call order; None when it is not one."""
    if not isinstance(module, nn.Sequential):
        return None
    out = []
    for m in module:
        inner = leaf_modules(m) if isinstance(m, nn.Sequential) else [m]
        if inner is None:
            return None
        out.extend(inner)
    return out
