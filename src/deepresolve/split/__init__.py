"""Split a PyTorch model at an intermediate layer into a body (input -> H) and a head (H -> class scores).

DeepResolve optimises the feature map H of one layer, so it needs the part of the network after that layer
as a function of H alone. :func:`split_model` builds it for nested ``nn.Sequential`` models directly, and for any
other model from its traced forward (``torch.fx`` with the input's shape known, else ``torch.export``); when no
tracer can follow the model, ``head="replay"`` reruns it with H in place, or pass ``head=`` yourself.

Targeting a layer
-----------------
``layer`` is a name from ``model.named_modules()`` and H is that module's **output**. To analyse the **input** of
a module instead (the paper's DeepSEA analysis uses the input of the third convolution), pass ``at="input"``.

Models as published
-------------------
``output=`` chooses what to score when the model returns a tuple, a dict or a profile, and ``channels_last=True``
feeds ``(N, L, 4)`` models: :mod:`.adapters`.

Modules: :mod:`.core` (``split_model``), :mod:`.adapters`, :mod:`.sequential`, :mod:`.tracing`, :mod:`.graph`,
:mod:`.replay`, :mod:`.base` (``capture``, ``list_layers``).
"""

from .adapters import ADAPTER_PARAMETERS, REDUCTIONS, Adapted, adapt, adapter_params, parse_output
from .base import SplitError, capture, list_layers, make_example
from .core import split_at, split_model

__all__ = ["ADAPTER_PARAMETERS", "REDUCTIONS", "Adapted", "SplitError", "adapt", "adapter_params", "capture",
           "list_layers",
           "make_example", "parse_output", "split_at", "split_model"]
