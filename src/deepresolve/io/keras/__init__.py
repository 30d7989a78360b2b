"""Load trained Keras models (Keras 0.x to 3.x files, ``Sequential`` or functional) as PyTorch modules, without
Keras installed.

The DeepResolve authors published their models as Keras 1.2 files for the Theano backend; other published
genomics models are Keras 2 ``model.h5`` files or json + weights pairs (DeepSTARR, BPNet, ChromBPNet, scBasset,
DeepCpG, ...), or Keras 3 ``.keras`` archives. :func:`load_keras` rebuilds such a model as a PyTorch module that
computes exactly what Keras computed, so that the rest of the package (which works on PyTorch modules) can
analyse it.

- :mod:`.files`: where the architecture and weights are, the config dialects and weight layouts.
- :mod:`.layers`: one converter per Keras layer class (:data:`SUPPORTED_LAYERS`), shared by every dialect.
- :mod:`.modules`: the small modules the converters use besides ``torch.nn``'s.
- :mod:`.sequential`: ``Sequential`` models as :class:`torch.nn.Sequential` (``conv1``, ``pool1``, ``dense1``...).
- :mod:`.graph`: functional models as :class:`~.graph.KerasGraph`, submodules named after the Keras layers.
- :mod:`.inputs`: input layouts, :func:`sequence_input`, :func:`check_input_shape`.
"""

from .graph import KerasGraph
from .inputs import check_input_shape, sequence_input
from .layers import SUPPORTED_ACTIVATIONS, SUPPORTED_LAYERS
from .load import load_keras
from .modules import FromOneHot, SigmoidGELU

__all__ = ["SUPPORTED_ACTIVATIONS", "SUPPORTED_LAYERS", "FromOneHot", "KerasGraph", "SigmoidGELU", "check_input_shape",
           "load_keras", "sequence_input"]
