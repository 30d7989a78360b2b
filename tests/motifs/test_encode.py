"""ENCODE experiment names → factor → JASPAR motifs."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepresolve.errors import ArgumentError
from deepresolve.motifs.encode import (
    Experiment,
    factor_of,
    jaspar_keys_for,
    motif_components,
    parse_experiment,
)
from deepresolve.motifs.jaspar import jaspar_motifs

SHARED = Path(__file__).parents[3] / "shared" / "data" / "tf422"

SYMBOLS = {"CTCF", "USF1", "FOXA1", "CEBPB", "ELK1", "MAFF", "ZNF143", "GATA2", "E2F1", "FOS", "BHLHE40", "STAT5A"}


@pytest.mark.parametrize("name, lab, cell, token, factor, suffix", [
    ("wgEncodeAwgTfbsHaibA549GrPcr1xDex50nmUniPk", "Haib", "A549", "Gr", "NR3C1", "Pcr1xDex50nm"),
    ("wgEncodeAwgTfbsHaibA549NrsfV0422111Etoh02UniPk", "Haib", "A549", "Nrsf", "REST", "V0422111Etoh02"),
    ("wgEncodeAwgTfbsSydhK562Tr4UcdUniPk", "Sydh", "K562", "Tr4", "NR2C2", "Ucd"),
    ("wgEncodeAwgTfbsUtaMcf7CmycSerumstimUniPk", "Uta", "Mcf7", "Cmyc", "MYC", "Serumstim"),
    ("wgEncodeAwgTfbsHaibGm12891Pu1Pcr1xUniPk", "Haib", "Gm12891", "Pu1", "SPI1", "Pcr1x"),
    ("wgEncodeAwgTfbsHaibEcc1EralphaaV0416102Est10nm1hUniPk", "Haib", "Ecc1", "Eralphaa", "ESR1", "V0416102Est10nm1h"),
    ("wgEncodeAwgTfbsSydhGm10847NfkbTnfaIggrabUniPk", "Sydh", "Gm10847", "Nfkb", "RELA", "TnfaIggrab"),
    ("wgEncodeAwgTfbsHaibHepg2Ap2alphaV0416101UniPk", "Haib", "Hepg2", "Ap2alpha", "TFAP2A", "V0416101"),
    ("wgEncodeAwgTfbsHaibA549Ctcfsc5916Pcr1xEtoh02UniPk", "Haib", "A549", "Ctcfsc5916", "CTCF", "Pcr1xEtoh02"),
    ("wgEncodeAwgTfbsSydhGm12878Elk112771IggmusUniPk", "Sydh", "Gm12878", "Elk112771", "ELK1", "Iggmus"),
    ("wgEncodeAwgTfbsSydhHepg2Maffm8194IggrabUniPk", "Sydh", "Hepg2", "Maffm8194", "MAFF", "Iggrab"),
    ("wgEncodeAwgTfbsSydhGm12878Znf143166181apUniPk", "Sydh", "Gm12878", "Znf143166181ap", "ZNF143", ""),
    ("wgEncodeAwgTfbsUchicagoK562Egata2UniPk", "Uchicago", "K562", "Egata2", "GATA2", ""),
    ("wgEncodeAwgTfbsUchicagoK562EfosUniPk", "Uchicago", "K562", "Efos", "FOS", ""),
    ("wgEncodeAwgTfbsUchicagoK562EgfpFosUniPk", "Uchicago", "K562", "EgfpFos", "FOS", ""),
    ("wgEncodeAwgTfbsSydhHelas3Hae2f1UniPk", "Sydh", "Helas3", "Hae2f1", "E2F1", ""),
    ("wgEncodeAwgTfbsSydhHek293tZnf263UcdUniPk", "Sydh", "Hek293t", "Znf263", "ZNF263", "Ucd"),
    ("wgEncodeAwgTfbsUwHcmCtcfUniPk", "Uw", "Hcm", "Ctcf", "CTCF", ""),
    ("wgEncodeAwgTfbsOpenHelas3Usf1UniPk", "Open", "Helas3", "Usf1", "USF1", ""),
    ("wgEncodeAwgTfbsBroadH1hescCtcfUniPk", "Broad", "H1hesc", "Ctcf", "CTCF", ""),
    ("HaibHepg2Foxa1sc101058V0416101", "Haib", "Hepg2", "Foxa1sc101058", "FOXA1", "V0416101"),
])
def test_parse_hand_written(name, lab, cell, token, factor, suffix):
    e = parse_experiment(name)
    assert e == Experiment(name=name, lab=lab, cell=cell, factor_token=token, factor=factor, suffix=suffix)


def test_parse_with_explicit_symbols_and_paths():
    assert parse_experiment("/models/wgEncodeAwgTfbsHaibK562Usf1V0416101UniPk/", symbols=SYMBOLS).factor == "USF1"
    assert factor_of("wgEncodeAwgTfbsSydhK562CfosUniPk") == "FOS"
    # the longest matching prefix wins, and an antibody code glued on is not part of the factor
    assert parse_experiment("wgEncodeAwgTfbsHaibK562Stat5asc74442V0422111UniPk", symbols=SYMBOLS).factor == "STAT5A"


def test_parse_errors():
    with pytest.raises(ArgumentError, match=r"^name: expected a known lab after 'wgEncodeAwgTfbs' \(.*\), got "
                                            r"'wgEncodeAwgTfbsFooK562CtcfUniPk', which has no known lab$"):
        parse_experiment("wgEncodeAwgTfbsFooK562CtcfUniPk")
    with pytest.raises(ArgumentError, match=r"^name: expected a factor token naming a known gene after lab 'Haib', "
                                            r"cell 'K562', got '.*', whose factor token 'Qqq9' names none"):
        parse_experiment("wgEncodeAwgTfbsHaibK562Qqq9UniPk", symbols=SYMBOLS)
    with pytest.raises(ArgumentError, match=r"^name: expected a non-empty string, got None$"):
        parse_experiment(None)


def test_motif_components_and_keys():
    assert motif_components("Bach1::Mafk") == ["BACH1", "MAFK"]
    assert motif_components("TFAP2A(var.2)") == ["TFAP2A"]
    keys = ["MA0591.1 Bach1::Mafk", "MA0496.1 MAFK", "MA0139.1 CTCF", "MA1102.1 CTCFL"]
    assert jaspar_keys_for("mafk", keys) == ["MA0591.1 Bach1::Mafk", "MA0496.1 MAFK"]
    assert jaspar_keys_for("CTCF", keys) == ["MA0139.1 CTCF"]  # CTCFL is another gene
    with pytest.raises(ArgumentError, match=r"^motif_keys: expected keys '<matrix id> <name>', got 'CTCF'$"):
        jaspar_keys_for("CTCF", ["CTCF"])


@pytest.mark.parametrize("release", ["JASPAR2016", "JASPAR2024"])
def test_every_shared_experiment_has_a_jaspar_motif(release):
    if not SHARED.is_dir():
        pytest.skip(f"shared trained models not found at {SHARED} (CI keeps ../shared beside the clone)")
    motifs = jaspar_motifs(release)
    folders = sorted(p.name for p in SHARED.iterdir() if p.is_dir())
    assert len(folders) == 141
    missing = [f for f in folders if not jaspar_keys_for(parse_experiment(f).factor, motifs)]
    assert missing == []
    # spot checks on the real folder list
    factors = {f: parse_experiment(f).factor for f in folders}
    assert factors["wgEncodeAwgTfbsHaibA549GrPcr1xDex50nmUniPk"] == "NR3C1"
    assert factors["wgEncodeAwgTfbsSydhK562Tr4UcdUniPk"] == "NR2C2"
    assert factors["wgEncodeAwgTfbsHaibGm12891Pu1Pcr1xUniPk"] == "SPI1"
    assert sum(v == "CTCF" for v in factors.values()) == 33
