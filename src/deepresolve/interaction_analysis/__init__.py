"""The feature-interaction analysis: which learned features of a layer act together, and how (no data set needed).

An addition to the paper (whose inconsistency level cannot see XOR logic); :func:`interactions` is the entry point,
:class:`~deepresolve.results.Interactions` its result, and :mod:`.analysis` describes the method. Its stages:
:mod:`.options` (argument checks), :mod:`.network` (the split model), :mod:`.words` (preferred words, the word
scan), :mod:`.players` (on-levels, motif groups), :mod:`.contexts` (backgrounds, slots, coalitions) and
:mod:`.effects` (evaluation, main effects, pair screening, pair statistics).
"""

from .analysis import interactions
from .players import motif_groups
from .words import preferred_words, scan_words

__all__ = ["interactions", "motif_groups", "preferred_words", "scan_words"]
