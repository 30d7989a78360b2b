"""Nested ``nn.Sequential`` models, cut by list slicing (no tracing): the split for Sequentials, and the way into
TorchScript models, which take no hooks and cannot be traced."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

Part = list[tuple[str, nn.Module]]


def is_sequential_path(model: nn.Module, layer: str) -> bool:
    """Whether every module on the way from ``model`` down to ``layer`` (``model`` included) is a Sequential."""
    module = model
    for part in layer.split("."):
        if not isinstance(module, nn.Sequential):
            return False
        module = module._modules[part]
    return True


def split_sequential(seq: nn.Sequential, path: list[str], at: str) -> tuple[Part, Part]:
    """The (name, module) lists before and after the layer at ``path`` (its names, outermost first), the layer
    itself before the cut for ``at="output"`` and after it for ``at="input"``; inner Sequentials are cut too."""
    names = list(seq._modules)
    i = names.index(path[0])
    before = [(n, seq._modules[n]) for n in names[:i]]
    after = [(n, seq._modules[n]) for n in names[i + 1:]]
    child = seq._modules[path[0]]
    if len(path) == 1:
        if at == "output":
            before.append((path[0], child))
        else:
            after.insert(0, (path[0], child))
        return before, after
    inner_before, inner_after = split_sequential(child, path[1:], at)
    if inner_before:
        before.append((path[0], nn.Sequential(OrderedDict(inner_before))))
    if inner_after:
        after.insert(0, (path[0], nn.Sequential(OrderedDict(inner_after))))
    return before, after
