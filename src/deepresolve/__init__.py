"""deepresolve: what a genomic CNN learned inside the network, by gradient ascent on an intermediate feature map.

Implements DeepResolve (Liu, Zeng & Gifford, BMC Bioinformatics 2019)::

    import deepresolve as dr
    dr.list_layers(model, input_shape=(4, 1000))         # choose a layer
    res = dr.resolve(model, layer="conv2", input_shape=(4, 1000), restarts=10)
    print(res)                                           # important and non-additive channels per class
    A = dr.class_similarity(res)                         # (C, C) Pearson of non-negative OFIVs
    ix = dr.interactions(model, "conv2", input_shape=(4, 1000))  # feature interactions (an addition to the paper)
    res = dr.resolve(model, "conv2", input_shape=(4, 1000), interactions=True)  # both, saved together
    res.save("result.h5"); res = dr.load("result.h5")

Names are imported on first use, so ``import deepresolve`` is quick and loading a saved result
(``dr.load``, :mod:`deepresolve.results`) never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module that defines it (imported on first use).
_EXPORTS = {
    "Interactions": "results", "PairScores": "results", "Result": "results", "load": "results",
    "resolve": "pipeline",
    "interactions": "interaction_analysis",
    "marginal_interactions": "baselines", "shapley_interactions": "baselines",
    "feature_ascent": "ascent",
    "summarize": "importance", "summarize_fivs": "importance",
    "class_difference": "similarity", "class_similarity": "similarity", "cluster_classes": "similarity",
    "label_correlation": "similarity", "ofiv_correlation": "similarity", "weight_cosine": "similarity",
    "list_layers": "split", "split_model": "split",
    "load_keras": "io", "load_model": "io",
    "channel_motifs": "motifs", "deepmotif": "motifs", "filter_pwms": "motifs", "jaspar_motifs": "motifs",
    "tomtom_matches": "motifs",
    "write_report": "viz.report",
}
_MODULES = {"plot": "viz.plot"}

__all__ = sorted([*_EXPORTS, *_MODULES])
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{_MODULES[name]}", __name__)
    else:
        raise AttributeError(f"module 'deepresolve' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
