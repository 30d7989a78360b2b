"""deepresolve: what a genomic CNN learned inside the network, by gradient ascent on an intermediate feature map.

Implements DeepResolve (Liu, Zeng & Gifford, BMC Bioinformatics 2019)::

    import deepresolve as dr
    dr.list_layers(model, input_shape=(4, 1000))         # choose a layer
    res = dr.resolve(model, layer="conv2", input_shape=(4, 1000), restarts=10, l2=1.0)
    print(res)                                           # important and non-additive channels per class
    A = dr.class_similarity(res)                         # (C, C) Pearson of non-negative OFIVs
    res.save("result.h5"); res = dr.load("result.h5")
"""

from .ascent import feature_ascent
from .network import list_layers, split_model
from .resolve import resolve
from .result import Result, load
from .similarity import (
    class_difference,
    class_similarity,
    cluster_classes,
    label_correlation,
    ofiv_correlation,
    weight_cosine,
)
from .summarize import summarize

__all__ = [
    "Result", "class_difference", "class_similarity", "cluster_classes", "feature_ascent", "label_correlation",
    "list_layers", "load", "ofiv_correlation", "resolve", "split_model", "summarize", "weight_cosine",
]
__version__ = "0.1.0"
