"""deepresolve: what a genomic CNN learned inside the network, by gradient ascent on an intermediate feature map.

Implements DeepResolve (Liu, Zeng & Gifford, BMC Bioinformatics 2019)::

    import deepresolve as dr
    dr.list_layers(model, input_shape=(4, 1000))         # choose a layer
    res = dr.resolve(model, layer="conv2", input_shape=(4, 1000), restarts=10, l2=1.0)
    print(res)                                           # important and non-additive channels per class
    A = dr.class_similarity(res)                         # (C, C) Pearson of non-negative OFIVs
    ix = dr.interactions(model, "conv2", input_shape=(4, 1000))  # feature interactions (an addition, issue 10)
    res = dr.resolve(model, "conv2", input_shape=(4, 1000), interactions=True)  # both, saved together
    res.save("result.h5"); res = dr.load("result.h5")
"""

from .ascent import feature_ascent
from .interactions import Interactions, interactions
from .io import load_keras, load_model
from .motifs import channel_motifs, deepmotif, filter_pwms, jaspar_motifs, tomtom_matches
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
from .split import list_layers, split_model
from .summarize import summarize, summarize_fivs
from .viz import plot
from .viz.report import write_report

__all__ = [
    "Interactions", "Result", "channel_motifs", "class_difference", "class_similarity", "cluster_classes", "deepmotif",
    "feature_ascent", "filter_pwms", "interactions", "jaspar_motifs", "label_correlation", "list_layers", "load", "load_keras",
    "load_model", "ofiv_correlation", "plot", "resolve", "split_model",
    "summarize", "summarize_fivs", "tomtom_matches", "weight_cosine", "write_report",
]
__version__ = "0.1.0"
