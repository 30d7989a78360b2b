"""ENCODE experiment names → transcription factor → JASPAR motifs.

The uniform ENCODE TFBS peak sets (the "AWG" sets the DeepResolve models were trained on) are named
``wgEncodeAwgTfbs<Lab><Cell><Factor><suffix>UniPk``, e.g. ``wgEncodeAwgTfbsHaibA549GrPcr1xDex50nmUniPk``: lab HAIB,
cell A549, factor GR (gene NR3C1), then antibody/protocol/treatment tags. The factor token is written in ENCODE's
own spelling (``Nrsf``, ``Cmyc``, ``Tr4``, ``Pu1``) and may carry an antibody code glued to it (``Ctcfsc5916``,
``Elk112771``, ``Maffm8194``). This module peels lab and cell off, then finds the gene symbol as the longest prefix
of the factor token that is a known ENCODE alias or a gene symbol appearing in JASPAR; an epitope-tag prefix
(``E``/``Egfp`` for eGFP, ``Ha`` for HA) is dropped when the token itself does not match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Mapping

from ..errors import ArgumentError
from .jaspar import jaspar_motifs

LABS = ("Uchicago", "Broad", "Haib", "Sydh", "Open", "Uta", "Uw")  # longest first: "Uta"/"Uchicago" before "Uw"

# ENCODE spelling (lower case) → HGNC symbol, for factors whose ENCODE name is not their gene symbol.
ALIASES: dict[str, str] = {
    "nrsf": "REST",
    "gr": "NR3C1",
    "tr4": "NR2C2",
    "tr2": "NR2C1",
    "cmyc": "MYC",
    "cfos": "FOS",
    "cjun": "JUN",
    "pu1": "SPI1",
    "eralphaa": "ESR1",
    "eraa": "ESR1",
    "eralpha": "ESR1",
    "nfkb": "RELA",
    "ap2alpha": "TFAP2A",
    "ap2gamma": "TFAP2C",
    "srebp1": "SREBF1",
    "srebp2": "SREBF2",
    "gabp": "GABPA",
    "nrf1": "NRF1",
    "pgr": "PGR",
    "hnf4g": "HNF4G",
    "p53": "TP53",
    "ebf": "EBF1",
    "corest": "RCOR1",
    "nfe2l2": "NFE2L2",
    "nrf2": "NFE2L2",
    "pax5c20": "PAX5",
    "ap1": "JUN",
    "ctcfl": "CTCFL",
    "tcf3": "TCF3",
    "e2a": "TCF3",
    "hey1": "HEY1",
    "yy1": "YY1",
}
# Epitope-tag prefixes tried when the factor token itself names no gene
# (eGFP-FOS: "Efos", "EgfpFos"; HA-E2F1: "Hae2f1").
TAG_PREFIXES = ("egfp", "e", "ha", "flag")

_PREFIX = "wgEncodeAwgTfbs"
_SUFFIX = "UniPk"
_CELL = re.compile(r"[A-Z0-9][a-z0-9]*")  # CamelCase token: "Gm12878", "K562", "H1hesc", "Hek293t"
_TOKEN = re.compile(r"[A-Z][a-z0-9]*")


@dataclass(frozen=True)
class Experiment:
    """The parts of an ENCODE AWG TFBS experiment name.

    Attributes
    ----------
    name : the name as given.
    lab, cell : e.g. "Haib", "A549".
    factor_token : ENCODE's token for the factor with any glued antibody code, e.g. "Ctcfsc5916".
    factor : HGNC gene symbol of the factor, e.g. "CTCF", "NR3C1".
    suffix : the rest (antibody, protocol, treatment tags), e.g. "Pcr1xEtoh02".
    """

    name: str
    lab: str
    cell: str
    factor_token: str
    factor: str
    suffix: str


def motif_components(motif_name: str) -> list[str]:
    """Upper-case gene symbols of a JASPAR motif name: ``"Bach1::Mafk"`` → ["BACH1", "MAFK"];
    ``"TFAP2A(var.2)"`` → ["TFAP2A"]."""
    name = re.sub(r"\(var\.\d+\)", "", motif_name)
    return [part.strip().upper() for part in name.split("::") if part.strip()]


@lru_cache(maxsize=4)
def jaspar_symbols(release: str = "JASPAR2024") -> frozenset[str]:
    """Every gene symbol appearing in a JASPAR CORE vertebrates motif name of ``release`` (upper case)."""
    return frozenset(s for key in jaspar_motifs(release=release) for s in motif_components(key.split(" ", 1)[1]))


def _match_symbol(token: str, symbols: frozenset[str]) -> str | None:
    """The gene symbol named by the longest prefix of ``token`` (an ENCODE alias or a symbol), or None."""
    low = token.lower()
    for end in range(len(low), 0, -1):
        head = low[:end]
        if head in ALIASES:
            return ALIASES[head]
        if head.upper() in symbols:
            return head.upper()
    return None


def parse_experiment(name: str, symbols: Iterable[str] | None = None) -> Experiment:
    """Split an ENCODE AWG TFBS experiment name into lab, cell, factor and suffix.

    Parameters
    ----------
    name : str
        ``wgEncodeAwgTfbs<Lab><Cell><Factor><suffix>UniPk`` (the prefix and ``UniPk`` may be omitted), or a path
        whose last part is such a name.
    symbols : iterable of str, optional
        Gene symbols the factor may be; default: the symbols in JASPAR 2024 CORE vertebrates plus :data:`ALIASES`.

    Returns
    -------
    Experiment
    """
    if not isinstance(name, str) or not name:
        raise ArgumentError(f"name: expected a non-empty string, got {name!r}")
    base = re.split(r"[\\/]", name.rstrip("/\\"))[-1]
    core = base[len(_PREFIX):] if base.startswith(_PREFIX) else base
    core = core[: -len(_SUFFIX)] if core.endswith(_SUFFIX) else core
    lab = next((l for l in LABS if core.startswith(l)), None)
    if lab is None:
        raise ArgumentError(f"name: expected a known lab after {_PREFIX!r} ({', '.join(LABS)}), got {base!r}, "
                            "which has no known lab")
    rest = core[len(lab):]
    cell_match = _CELL.match(rest)
    if cell_match is None:
        raise ArgumentError(f"name: expected a CamelCase cell line after lab {lab!r}, got {base!r}, which has none")
    cell = cell_match.group(0)
    rest = rest[len(cell):]
    symbols = frozenset(s.upper() for s in symbols) if symbols is not None else jaspar_symbols()
    token_match = _TOKEN.match(rest)
    if token_match is None:
        raise ArgumentError(f"name: expected a factor after cell {cell!r}, got {base!r}, which has none")
    token = token_match.group(0)
    after = rest[len(token):]
    factor = _match_symbol(token, symbols)
    if factor is None:
        # An epitope tag glued to the factor ("Egata2", "Hae2f1") or as its own token ("EgfpFos").
        for tag in TAG_PREFIXES:
            if token.lower() == tag and (nxt := _TOKEN.match(after)):
                factor = _match_symbol(nxt.group(0), symbols)
                if factor:
                    token, after = token + nxt.group(0), after[len(nxt.group(0)):]
                    break
            elif token.lower().startswith(tag) and len(token) > len(tag):
                factor = _match_symbol(token[len(tag):], symbols)
                if factor:
                    break
    if factor is None:
        raise ArgumentError(
            f"name: expected a factor token naming a known gene after lab {lab!r}, cell {cell!r}, got {base!r}, whose "
            f"factor token {token!r} names none; add its ENCODE spelling to deepresolve.motifs.encode.ALIASES"
        )
    return Experiment(name=base, lab=lab, cell=cell, factor_token=token, factor=factor, suffix=after)


def factor_of(name: str) -> str:
    """HGNC symbol of the factor of an ENCODE AWG TFBS experiment, e.g. ``"...HaibA549GrPcr1x..."`` → ``"NR3C1"``."""
    return parse_experiment(name).factor


def jaspar_keys_for(factor: str, motif_keys: Iterable[str]) -> list[str]:
    """The JASPAR motifs of a factor: keys ``"<matrix id> <name>"`` whose name includes the symbol.

    A heterodimer motif counts for each of its partners (``"Bach1::Mafk"`` is a BACH1 and a MAFK motif), since a
    ChIP-seq of either partner enriches it; JASPAR 2016 holds BACH1 and STAT5A only as such dimers.

    Parameters
    ----------
    factor : str
        Gene symbol (any case).
    motif_keys : iterable of str
        Keys as returned by :func:`deepresolve.motifs.jaspar.jaspar_motifs`.
    """
    symbol = factor.upper()
    out = []
    for key in motif_keys:
        parts = key.split(" ", 1)
        if len(parts) != 2:
            raise ArgumentError(f"motif_keys: expected keys '<matrix id> <name>', got {key!r}")
        if symbol in motif_components(parts[1]):
            out.append(key)
    return out


def experiment_motifs(name: str, motifs: Mapping[str, object]) -> list[str]:
    """JASPAR motif keys of the factor of experiment ``name`` among ``motifs`` (see :func:`jaspar_keys_for`)."""
    return jaspar_keys_for(factor_of(name), motifs)
