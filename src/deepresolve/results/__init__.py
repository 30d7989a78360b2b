"""Result types of deepresolve, their tables and their files; nothing here imports torch.

- :class:`Result`: what :func:`deepresolve.resolve` computed (FIMs, FIVs, IL, mixtures, OFIVs), saved as HDF5.
- :class:`Interactions`: what :func:`deepresolve.interactions` computed, saved as HDF5 (alone or inside a result).
- :class:`PairScores`: pair interactions of words from a baseline (:mod:`deepresolve.baselines`), saved as HDF5.
- :func:`load`: read a saved result. Loading needs numpy, h5py and pandas only.
"""

from .interactions import Interactions, bh_qvalues, kind
from .pair_scores import PairScores
from .result import CATEGORIES, Result, categories, check_result, load, top_pairs
from .tables import channels_long, groups_long, pairs_long, write_tsv

__all__ = ["CATEGORIES", "Interactions", "PairScores", "Result", "bh_qvalues", "categories", "channels_long",
           "check_result", "groups_long", "kind",
           "load", "pairs_long", "top_pairs", "write_tsv"]
