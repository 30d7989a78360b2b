"""The logic suite's models and motif labels (deepresolve.paper.logic): global pooling and long words."""

import pytest
import torch

from deepresolve.io.sequences import one_hot
from deepresolve.paper.claims import filter_kmer_scores
from deepresolve.paper.logic import CASES, MOTIFS, two_layer_cnn, word_motifs


def _features(model, seqs):
    """The dense head's input: everything before ``dense1``."""
    names = [n for n, _ in model.named_children()]
    with torch.no_grad():
        return model[:names.index("dense1")](torch.from_numpy(one_hot(seqs)))


@pytest.mark.parametrize("name, layer, shape", [("xor100", "pool1", (32, 1)), ("xor_deep", "pool2", (32, 6))])
def test_global_pool_cases_keep_their_analysed_layer(name, layer, shape):
    case = CASES[name]
    x = torch.zeros(1, 4, case.length)
    with torch.no_grad():
        for n, m in case.model().named_children():
            x = m(x)
            if n == layer:
                assert tuple(x.shape[1:]) == shape
    assert x.shape == (1, 1)


@pytest.mark.parametrize("make, length", [(lambda: CASES["xor100"].model(), 100),
                                          (lambda: two_layer_cnn(80, global_pool=True), 80)])
def test_global_pool_models_see_a_motif_anywhere_alike(make, length):
    torch.manual_seed(0)
    model = make().eval()
    # the motif moved by multiples of the total stride (4 in the two-layer model), its receptive fields inside
    bg = "A" * length
    f = _features(model, [bg[:p] + MOTIFS[0] + bg[p + 6:] for p in (24, 32, 40)])
    assert torch.allclose(f[0], f[1]) and torch.allclose(f[0], f[2])
    assert not torch.allclose(f[0], _features(model, [bg])[0])


def test_two_layer_cnn_without_global_pool_is_unchanged():
    names = [n for n, _ in two_layer_cnn(40).named_children()]
    assert "pool3" not in names and two_layer_cnn(40).dense1.in_features == 32 * 6
    with pytest.raises(ValueError, match="needs >= 19 bp"):
        two_layer_cnn(18, global_pool=True)


def test_word_motifs_reads_long_words_by_windows():
    long = one_hot(["AAGAAAGCTCATCATTCAA", "GCGCTAGTGGGACGCTTAA", "ATATATATATATATATATA"])
    assert word_motifs(long, MOTIFS[:3]) == ["GCTCAT", "CGCTTG", None]  # CGCTTA: one mismatch
    # read whole, the flanks of a 19-bp word keep it far below the threshold
    assert filter_kmer_scores(long[:1], ["GCTCAT"])[0, 0] < 0.55
    # 8-bp words (first-layer filters) are scored as before: one window, the whole word
    short = one_hot(["GGCTCATA", "ACGCTTGT", "TCATATCC"])
    assert word_motifs(short, MOTIFS) == ["GCTCAT", "CGCTTG", None]
