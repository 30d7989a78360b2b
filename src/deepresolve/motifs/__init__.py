"""What a channel detects, as a motif.

- :mod:`~deepresolve.motifs.pwm`: PWMs from filter weights, optimised inputs or counts (:func:`filter_pwms`).
- :mod:`~deepresolve.motifs.input_ascent`: input-space gradient ascent, shared by :func:`channel_motifs` (a
  deeper channel over its receptive field) and :func:`deepmotif` (the enhanced DeepMotif baseline).
- :mod:`~deepresolve.motifs.jaspar`: MEME files, JASPAR (offline through pyjaspar) and Tomtom (memelite).
- :mod:`~deepresolve.motifs.matches`: all of it end to end (:func:`match_channels`: PWMs -> MEME -> Tomtom table).
- :mod:`~deepresolve.motifs.encode`: ENCODE experiment names and the JASPAR motifs of their factors.

All PWMs are numpy arrays ``(4, width)`` in A, C, G, T order; sets of PWMs are ``(K, 4, width)`` arrays or lists.
"""

from .input_ascent import channel_motifs, deepmotif, receptive_field
from .jaspar import jaspar_motifs, read_meme, tomtom_matches, write_meme
from .matches import match_channels
from .pwm import (
    filter_pwms,
    filter_weights,
    first_conv,
    information_content,
    to_pwm,
    trim_pwm,
)

__all__ = [
    "channel_motifs", "deepmotif", "filter_pwms", "filter_weights", "first_conv", "information_content",
    "jaspar_motifs", "match_channels", "read_meme", "receptive_field", "to_pwm", "tomtom_matches", "trim_pwm",
    "write_meme",
]
