"""The feature-interaction analysis: which learned features of a layer act together, and how (no data set needed).

An addition to the paper (whose inconsistency level cannot see XOR logic); :func:`interactions` is the entry point,
:class:`~deepresolve.results.Interactions` its result.
"""

from .analysis import interactions, motif_groups, preferred_words, scan_words

__all__ = ["interactions", "motif_groups", "preferred_words", "scan_words"]
