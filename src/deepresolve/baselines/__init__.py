"""Baselines, one module per method.

- :mod:`.attribution`: saliency, gradient x input and DeepLIFT of the input or of a layer (captum;
  :func:`attribute`, :func:`layer_attribution`).
- :mod:`.marginal`: pairwise interactions of given words by input-space marginalisation
  (:func:`marginal_interactions`).
- :mod:`.shapley`: pairwise Shapley interactions of given words (shapiq; :func:`shapley_interactions`).

Both interaction baselines take the words as players, write them into the same kind of random contexts
(:mod:`._players`) and return a :class:`~deepresolve.results.PairScores`.
"""

from .attribution import METHODS, attribute, layer_attribution
from .marginal import marginal_interactions
from .shapley import shapley_interactions

__all__ = ["METHODS", "attribute", "layer_attribution", "marginal_interactions", "shapley_interactions"]
