"""``head="replay"``: the head of a model no tracer can follow, as the model itself run again with the layer's
tensor replaced by H.

The replayed model runs on a fixed base input; a forward hook returns H in place of the layer's output (or a
pre-hook hands H to the layer as its input). This is the network after the layer only if nothing after it reads
the input some other way, so the head is accepted only after checking that: H taken from two different inputs,
replayed over the base input, must give each input's own scores within 1e-5 relative. Every call of the head runs
the model up to the layer on the base input too (the price of not needing a trace).
"""

from __future__ import annotations

import torch
from torch import nn

from .._model import forward
from .base import HookBody, SplitError

#: Largest relative difference between a replayed input's scores and its own.
TOLERANCE = 1e-5


class ReplayHead(nn.Module):
    """H -> scores: ``model`` run on ``base`` (repeated to H's batch) with ``layer``'s output or input set to H."""

    def __init__(self, model: nn.Module, layer: str, at: str, base: torch.Tensor):
        super().__init__()
        self.model, self.layer, self.at = model, layer, at
        self.register_buffer("base", base[:1].clone())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        module = self.model.get_submodule(self.layer)
        if self.at == "output":
            handle = module.register_forward_hook(lambda _m, _inp, _out: h)
        else:
            handle = module.register_forward_pre_hook(lambda _m, args: (h, *args[1:]))
        try:
            return self.model(self.base.expand(h.shape[0], *self.base.shape[1:]))
        finally:
            handle.remove()


def _calls(model: nn.Module, layer: str, x: torch.Tensor) -> int:
    count = [0]
    handle = model.get_submodule(layer).register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
    try:
        forward(model, x, "the model")
    finally:
        handle.remove()
    return count[0]


def _random_inputs(x: torch.Tensor) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    if x.dim() == 3 and x.shape[1] == 4:
        picks = torch.randint(0, 4, (2, x.shape[2]), generator=generator)
        return [torch.eye(4)[p].T[None].to(x) for p in picks]
    return [torch.rand(x.shape, generator=generator).to(x) for _ in range(2)]


def replay_split(model: nn.Module, layer: str, at: str, x: torch.Tensor) -> tuple[nn.Module, nn.Module]:
    """Body and replay head of ``model`` at ``layer``, checked on ``x`` (1, ...) and two random inputs.

    The base input is zeros; the random inputs are one-hot along axis 1 for ``(1, 4, L)`` inputs, else uniform."""
    calls = _calls(model, layer, x)
    if calls != 1:
        raise SplitError(f"layer {layer!r} is called {calls} times in a forward pass; it must be called exactly "
                         "once. Pass head= yourself.")
    body, head = HookBody(model, layer, at), ReplayHead(model, layer, at, torch.zeros_like(x))
    for probe in (x, *_random_inputs(x)):
        ref = forward(model, probe, "the model")
        got = forward(head, forward(body, probe, f"the body (input -> {layer!r} {at})"), "the replayed head")
        scale = float(ref.abs().max()) if ref.numel() else 0.0
        if got.shape != ref.shape or float((got - ref).abs().max()) > TOLERANCE * max(scale, 1e-12):
            raise SplitError(
                f"head='replay': the scores of {layer!r} {at} replayed over another input differ from the model's "
                f"own, so the network after it also reads the input another way (a skip connection). Cut at a "
                f"layer whose output everything after it reads, or pass head= yourself."
            )
    return body, head
