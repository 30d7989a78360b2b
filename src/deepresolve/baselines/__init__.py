"""Baselines: input-dependent attributions (captum), one module per method.

- :mod:`.attribution`: saliency, gradient x input and DeepLIFT of the input or of a layer
  (:func:`attribute`, :func:`layer_attribution`).
"""

from .attribution import METHODS, attribute, layer_attribution

__all__ = ["METHODS", "attribute", "layer_attribution"]
