"""The objective of the ascent, S_c(H) - lambda ||H - center||^2, and its gradient, for a batch of rows."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import ModelError


def class_scores(head: nn.Module, h: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """S_c(H) of each row: ``head(h)`` (N, C_all) read at each row's own class ``cls`` (N,) -> (N,).

    Raises
    ------
    deepresolve.errors.ModelError
        The head does not return one score per class, (N, C_all).
    """
    out = head(h)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(f"head: expected class scores of shape (N, C), got {shape}")
    return out.gather(1, cls[:, None]).squeeze(1)


def value_and_grad(head: nn.Module, h: torch.Tensor, cls: torch.Tensor, l2: float,
                   center: torch.Tensor | None, bf16: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class scores, objectives and objective gradients of a batch of rows (the head in bfloat16 if ``bf16``).

    Parameters
    ----------
    head : nn.Module
    h : (B, *F) tensor -- the rows' points
    cls : (B,) long tensor -- the class each row scores
    l2 : float -- lambda
    center : (*F) tensor, optional -- the penalty's centre (default 0)
    bf16 : bool

    Returns
    -------
    scores, objectives : (B,) float32 tensors
    gradients : (B, *F) float32 tensor -- of the objective with respect to H

    Raises
    ------
    deepresolve.errors.ModelError
        The scores do not depend differentiably on H, or the head returns no (N, C) scores.
    """
    with torch.enable_grad(), torch.autocast(h.device.type, dtype=torch.bfloat16, enabled=bf16):
        h = h.detach().requires_grad_(True)
        s = class_scores(head, h, cls).float()
        if not s.requires_grad:
            raise ModelError("head: the class scores do not depend differentiably on H (no gradient flows back); "
                             "expected a head without detach(), argmax or integer ops after the layer")
        (g,) = torch.autograd.grad(s.sum(), h)
    g = g.float()
    d = h.detach() if center is None else h.detach() - center
    dims = tuple(range(1, h.dim()))
    obj = s.detach() - l2 * (d * d).sum(dim=dims)
    return s.detach(), obj, torch.add(g, d, alpha=-2.0 * l2)


def evaluate(head: nn.Module, maps: torch.Tensor, classes: Sequence[int], l2: float,
             center: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Class scores and objectives of given feature maps, in float32.

    Parameters
    ----------
    head : nn.Module
    maps : (R, *feature_shape) tensor
    classes : R output indices, one per map
    l2 : float
    center : tensor of feature_shape, optional

    Returns
    -------
    scores, objectives : (R,) tensors
    """
    cls = torch.as_tensor(list(classes), device=maps.device)
    with torch.no_grad():
        s = class_scores(head, maps, cls).float()
    d = maps if center is None else maps - center
    return s, s - l2 * (d * d).flatten(1).sum(dim=1)
