"""Channels as motifs, end to end: channel PWMs -> a MEME file -> Tomtom matches against JASPAR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from .._checks import Array, Int, Layer, OptionalOf, OutputFolder, declare
from .._files import write_atomic
from .._model import Model
from ..errors import ArgumentError
from .input_ascent import channel_motifs
from .jaspar import JasparRelease, jaspar_motifs, tomtom_matches, write_meme
from .pwm import filter_pwms


@declare(model=Model(), out_dir=OutputFolder(), layer=OptionalOf(Layer()),
         inputs=OptionalOf(Array(("N", 4, "L"), what="one-hot")), jaspar_release=JasparRelease(),
         n_matches=Int(minimum=1))
def match_channels(
    model: nn.Module,
    out_dir: str | Path,
    *,
    layer: str | None = None,
    inputs: np.ndarray | None = None,
    jaspar_release: str = "JASPAR2024",
    n_matches: int = 5,
) -> pd.DataFrame:
    """Channel PWMs of a model → MEME file and a Tomtom table of their best JASPAR matches.

    Parameters
    ----------
    model : nn.Module
        E.g. from :func:`deepresolve.io.models.load_model`.
    out_dir : path
        Receives ``channels.meme`` and ``tomtom_<release>.tsv``.
    layer : str, optional
        None: the first-layer convolution filters (:func:`~deepresolve.motifs.pwm.filter_pwms`). Otherwise a module
        name whose channels are visualised by :func:`~deepresolve.motifs.input_ascent.channel_motifs`, which then
        needs ``inputs``.
    inputs : (N, 4, L) array, optional
        One-hot sequences to initialise the channel ascent from.
    jaspar_release : str
        A pyjaspar release (CORE vertebrates).
    n_matches : int
        JASPAR matches kept per channel.

    Returns
    -------
    pandas.DataFrame
        The Tomtom table written to the TSV.
    """
    if layer is None:
        pwms = list(filter_pwms(model))
    else:
        if inputs is None:
            raise ArgumentError(f"inputs: expected one-hot sequences for layer={layer!r} (channel motifs start from "
                                "sequence fragments), got None")
        pwms = list(channel_motifs(model, layer, inputs)[0])
    database = jaspar_motifs(jaspar_release)
    names = [f"ch{k}" for k in range(len(pwms))]
    write_meme(pwms, names, out_dir / "channels.meme")
    df = tomtom_matches(pwms, database, names=names, n_matches=n_matches)
    write_atomic(out_dir / f"tomtom_{jaspar_release}.tsv", lambda f: df.to_csv(f, sep="\t", index=False))
    return df
