"""Feature interactions of a layer, without a data set: which learned features act together, and how.

DeepResolve's inconsistency level (IL) looks at the optima of a penalised ascent; for a piecewise-linear head
the optimum sits where the head is locally linear, so an XOR written as ``a + b - 2 relu(a + b - 1)`` is never
seen. This analysis measures interactions directly, as second differences of the class output when features of
the layer are switched on in random contexts (random-context second differences). :func:`interactions` runs its
stages in order: argument checks (:mod:`.options`), the split (:mod:`.network`), backgrounds, players
(:mod:`.players`, with the words of :mod:`.words`), contexts and their coalition (:mod:`.contexts`), main effects,
pair screening and pair statistics (:mod:`.effects`).

Players
-------
The K channels of the layer, and its G *motif groups*: the motifs the network reads, each with the channels that
detect it (trained networks learn one motif with several filters, which then interact like an OR, through
saturation, and one filter often matches parts of several motifs).

* **Preferred word** of each channel: for a first-layer channel (a convolution on the one-hot input followed only by
  element-wise activations, max pooling, dropout or reshaping; rearrangements before it that hand the one-hot input
  on unchanged, as in a Keras file or a ``channels_last`` model, do not count) the consensus of its filter, which
  gives the largest response the filter can give to any sequence (sum of the column maxima of the weights plus the
  bias); for deeper channels the receptive-field ascent of :func:`deepresolve.motifs.channel_motifs` from random
  sequences. ``words=`` overrides both (e.g. known motifs). **On-level** ``a_k``: the channel's response to its own
  word written into random sequences (its largest response over the layer's positions, averaged over 16 sequences);
  exact for a first-layer channel.
* **Motif groups**, ``motif_words="scan"`` (default; the word scan, :func:`~.words.scan_words`): every k-mer
  (k = 8 for inputs up to 200 bp, else 6; ``word_length``; never more than the channels' word width or L // 2)
  is written into random sequences, and its *read* is how much it changes the output of the head's first linear
  map (the layer's map itself when the head does not start with one), i.e. what the rest of the network takes
  from the layer. The k-mers whose read is a robust outlier, and the channels' preferred words, are candidates;
  read again on fixed probe sequences, in order of their reads, each is either a copy of a motif found before
  (below) or a new motif, grown base by base while its read rises (a long motif is found whole, up to the
  channels' word width) and trimmed of end bases its read does not depend on, up to ``top`` motifs; each is a
  group, and a channel joins the group whose word raises it most, if by at least ``group_threshold`` (0.5) of
  its range (on-level above its level on the backgrounds; else ``groups`` is -1 for it). It needs no output
  class and no partner, so it finds motifs that act only together. With ``words=`` or ``groups=`` given, the
  groups are made as for "filters". Group words have different lengths: they are (G, 4, w') with each word
  centred and zero columns that keep the background base wherever a word is written.
* **Copies** (:class:`~.words.CopyRule`): a word is a copy of a motif when their signatures (the mean change
  at the head's first map over the probe sequences, written at the same evenly spread places) are not far from
  parallel (cosine >= 0.3) and the motif's base preferences, as the network reads them (its *sensitivity*: the
  read with each base at each column), account for the word: taken as additive, they predict at least 0.6 of
  the word's read above a random word's, at the best alignment on either strand (shifted, mismatched,
  reverse-complement copies and fragments of long motifs), or the word carries 3/4 of the motif's *core* (the
  columns where a base change removes half of its read: partial copies that read more than the additive
  prediction, because trained filters detect parts of a motif on their own). Why not signatures alone, as
  suggested by "copies are read alike": partners of symmetric logic are read alike too: set I's XOR pair at the
  head's first map, cosine 0.996 (0.999 on the trained XOR fixture), and 0.93 between the channel profiles of
  the trained OR fixture's two motifs, where shifted copies of one motif went down to 0.4; the explained share
  separates them (0.00 to 0.33 between the planted motifs' words, against 0.6 to 1 for most copies). The scan
  merges copies; ``Players.copies`` (``Interactions.group_copies``) flags copies among groups from any source,
  e.g. two given words of one motif. Contexts treat a motif's copies as that motif (below); a pair of copies is
  reported as ``"redundant (copies of one motif)"``.
* **Group PWMs** (``Interactions.group_pwms``): at each column of a group's word, the read with each base above
  the read with the worst base, normalised: the motif as the network reads it. Each is matched against JASPAR
  (``jaspar``, a release bundled with pyjaspar, CORE vertebrates; None: no matching) by Tomtom
  (``Interactions.group_matches``: the 3 best targets with p- and q-values).
* ``motif_words`` given as words (G, 4, w) one-hot (known motifs; a zero column keeps the background's base):
  each word is a group, and a channel joins the group whose word raises it most, as in the scan (each word
  written into the same probe sequences at the same places, so a channel's choice does not depend on the other
  words).
* ``motif_words="filters"``: channels k, l whose preferred words make each other fire at ``group_threshold`` of
  their range or more, joined by average-linkage clustering (``groups=`` overrides); a group is switched on with
  the word of its member of highest on-level. Why it is not the default: on trained models a filter's consensus
  is often a chimera of parts of two motifs; in ``benchmarks/interactions_logic.py`` filter words missed a planted
  motif of the 3-way AND models, which met the target on 0 of 5 seeds (the scan: 4 of 5), and filter words met it
  in 5 of the 8 trained cases against the scan's 8 (figures in the README).

Switching players on (how W > 1 is handled)
-------------------------------------------
A *context* is a background sequence (``background``, below) with ``L // w`` non-overlapping slots for words of
width w (the width of the group words' array), in random order, and one uniformly random position of the layer's W
positions for every channel. A **group** is switched on in sequence space: its word is written into slot 0 or slot 1
(of a pair's two groups, the one of lower priority in the context, below, takes slot 0; a single player slot 0) and
the body computes the layer's map, so the motif occurrence sets every channel and position of the layer as a real
occurrence does (a single-column edit of the map does not: on a trained set I model it gave the XOR pair -1.4 where
planting the motifs gives -18 in logits). A **channel** is switched on in feature space:
``H[k, w] = max(H[k, w], a_k)`` at the context's position w for it. A context also carries a random *coalition*:
each of the ``context_groups`` strongest distinct motifs (below; a group that ``copies`` marks as a copy of one
already chosen is passed over) is present with probability ``context_on`` (written into the slots from 2 on, in the
order of the context's priorities for them, as far as slots last), so that interactions that need a third motif (set
I's XOR needs CAGGTC) are seen; a row that measures i and j removes from it the groups of i and j and every copy of
them.

**Backgrounds** (``background``): "uniform", i.i.d. uniform bases (the default without ``inputs=``); "gc",
i.i.d. bases of GC fraction ``gc`` (0.41 by default, the human genome's mean); "shuffle", dinucleotide shuffles of
``inputs=`` (the default with them); "markov", samples of the order-``markov_order`` Markov chain fitted on
``inputs=`` (their (k+1)-mer counts plus one; k = 2 by default, so their GC, CpG depletion and trinucleotides are
kept while any motif they hold is broken up). Why a choice: a model trained on a genome reads uniform random DNA
off its training distribution (GC 0.5 where the human genome has 0.41, CpG at 1/16 where it has about 1/100),
so "gc" or, with real sequences, "markov" keeps its contexts closer to what it was trained on. The on-levels and
the word scan keep uniform random sequences whatever the background.

**Contexts do not depend on how many copies of a motif were found, nor on the groups' order.** The backgrounds
are drawn before the players; the slot layouts, channel positions and the backgrounds' assignment to contexts
come from a stream of their own (keyed by ``seed``); each group's coin (present or not) and slot priority in
every context come from a stream keyed by ``seed`` and the group's word. Why: with one stream, a motif found as
three groups (shifted or mismatched copies) changed the draws of every context, entered the coalition three
times as often, and a pair's dropped groups missed its copies. Measured on the committed set I model
(``paper/fixtures/set_one``, its three motifs given as words, 128 contexts): adding a copy of GCTCAT shifted by
one base as a fourth group left every pair of the three motifs unchanged (identical to float rounding) when the
copy is marked in ``copies``; unmarked, it joined the coalition and moved CAGGTC x GCTCAT from +0.35 to +0.02,
CAGGTC x CGCTTG from +0.10 to -0.06 and GCTCAT x CGCTTG from -0.46 to -0.27.

Statistics
----------
On the output scale ``scale`` ("probability": the sigmoid of each logit, the default for models ending in a
sigmoid/softmax; else the raw output):

* **Interaction** of i, j for class c: the mean over contexts of ``v(S+ij) - v(S+i) - v(S+j) + v(S)``; > 0 synergy
  (AND-like), < 0 antagonism (XOR-, OR- or veto-like). The 2 x 2 truth table ``t[a, b]`` (mean output with i
  off/on, j off/on) is kept for every pair: the interaction is ``t11 - t10 - t01 + t00`` and
  :func:`~deepresolve.results.kind` names it.
* **Main effect**: the mean of ``v(S+i) - v(S)``. Pairs are evaluated among each class's ``top`` channels and
  ``top`` groups by *relative strength*: the larger of |main effect| / the class's largest (among channels,
  among groups) on the output scale and the same ratio on the logit scale; players below ``min_effect`` are left
  out (their pairs are NaN). A group's strength is also at least its strength alone or with one partner, measured
  first in pure background contexts: the larger of its relative main effect there and of its largest *joint*
  effect with one partner, ``v(S+g+h) - v(S)`` (relative, on both scales, among the ``2 top`` groups strongest
  alone). The coalition's ``context_groups`` are the groups of largest such strength over classes. Why: a member
  of a 3-way AND has no main effect at all, alone or on either scale, but a joint effect with one partner in
  logits (+3 to +4 measured), so it enters the coalition and the pair of the other two members is seen with it.
  Why the logit scale too: on the probability scale a motif that only acts with partners, or that moves an output
  saturated far from 0.5, has a main effect near 0 and would never be paired (set I's CGCTTG does nothing without
  CAGGTC; in a trained 3-way AND every probability main effect is exactly 0 at logits near -100), while its logit
  moves. Measured on the cached benchmark models with filter words (``benchmarks/interactions_logic.py``): with
  the logit scale the set I XOR pair was evaluated on 3 of 4 seeds and ranked first on 1, against 2 and 0 on the
  probability scale alone; the other cases unchanged. Interactions and p-values stay on the output scale.
* **p-value**: one-sided t-test over the contexts of the interval null ``|interaction| <= margin x r_c``, with
  ``r_c`` the class's output range over every truth table evaluated (channels and groups together: the largest
  mean output with players switched on or off, less the smallest): interactions below a tenth (by default) of what
  the players can move the output are effectively additive, as a motif is "used" when it moves the output by
  more than a tenth of its range. Why not a typical main effect (the rms of the ``top`` largest, as before): on a
  1000-bp AND model whose word scan also keeps the consensus words of filters the training left unused (each a
  weak veto), those small main effects pulled the rms down, and sub-additive pairs of the partners with them (a
  twentieth of the AND pair's interaction) were called significant.
* **q-value**: Benjamini-Hochberg (:func:`scipy.stats.false_discovery_control`) over a family of pairs of one
  level (channel pairs and group pairs are separate families): each class's pairs (``qvalues``,
  ``group_qvalues``) and all classes' pairs (``qvalues_all``, ``group_qvalues_all``). A pair is **significant**
  when the q-value of the family ``fdr`` ("class" by default: which pairs act together for this output; "all" for
  a screen over many outputs, where per-class rates let about ``significance`` of the classes without any
  interaction each show a false pair) is below ``significance`` (0.05): a false discovery rate over the pairs
  evaluated, not a per-pair error rate, so that ``top`` players giving hundreds of pairs do not give their
  share of false ones.

Cost
----
Every pass below is one sequence through the body (and the head's first linear map or the head), ``batch_size``
sequences per forward pass. The word scan: 4^k x 4 passes (k = 8: 262,144, seconds for a small model; inputs
over 200 bp get k = 6, 16,384 passes, minutes for a 1000-bp DeepSEA body), then 32 (the probe sequences) per
candidate (at most 1,024 k-mers and the K preferred words), per random word of each width met (64 per width),
per variant tried while a word grows (8 per base added) and per single-base variant of every word kept or grown
(3 w per word of w bases); each group's PWM and copies need its 3 w' variants too; given motif words instead:
32 per word and its 3 w' variants. The on-levels: 16 K
(each channel's word in 16 random sequences); a deeper layer's preferred words add the receptive-field ascent,
150 steps x 4 starts per channel. With P evaluated pairs (the union over classes of channel and group pairs: at
most ``C top (top - 1) / 2`` of each, and at most K (K - 1) / 2 channel and G (G - 1) / 2 group pairs), n
contexts, K channels and G groups: ``2 n G + 4 n S (S - 1) / 2`` for the groups' strength (S = min(2 top, G)),
``2 n (K + G)`` for the main effects and ``4 n P`` for the pairs; every pass gives all C classes at once, so C
enters only through P. For K = 1000, C = 2000, top = 24, n = 64 and G = K (every channel its own group, the most
``motif_words="filters"`` can give): P <= 999,000 (C top (top - 1) / 2 = 552,000 exceeds K (K - 1) / 2 =
499,500), so at most 2.6e8 passes, nearly all of them the pairs' (in practice far fewer: classes share their top
players; the word scan keeps G <= top, which leaves about half).

These are the rows asked for; rows with equal inputs are evaluated once (:class:`~.effects.Evaluator`): a context's
v(S) is shared by every pair whose players are outside its coalition, and v(S + i) by every pair in which i takes
the same slot, so the pairs cost about ``n (P + 2 (K + G))`` passes instead of ``4 n P``, and the groups' strength
about ``n S (S + 1) / 2`` instead of ``2 n S (S - 1)``; a channel switched on changes only the head's input, so the
body runs once per distinct sequence (within a chunk of pairs, below). Measured on a trained 1000-bp model of the
genomics-like suite (32 channels, 24 groups, 552 pairs, 128 contexts; ``benchmarks/interactions_scale.py``): the
pairs asked for 282,624 rows and 91,173 were distinct, the groups' strength 147,456 and 44,544, the main effects
14,336 and 7,540.

The pairs are evaluated in chunks of consecutive pairs (:func:`~.effects.pair_chunks`: at most 131,072 rows and
2^24 logits each, so memory does not grow with P), each reduced at once to its truth tables. Such a run is long:
with ``checkpoint=`` (:mod:`.checkpoint`) the players (the word scan included), the groups' strength, the main
effects and every chunk of pairs are written to a folder as they finish, and a rerun of the same call skips them
(after ``kill -9`` too), giving the uninterrupted result to the last bit; ``progress=True`` shows the k-mers of the
word scan and the pairs done, and the time left. With ``client=`` the chunks of pairs are Dask tasks
(:mod:`deepresolve.distributed`), the rest stays on this process; the result is a local run's.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .._checks import declare, renamed_arguments
from .._files import exclusive
from .._model import check_device, model_fingerprint
from .._progress import progress_bar
from ..distributed import client_map, pack
from ..results.interactions import Interactions
from ..split import adapt, adapter_params
from .checkpoint import Checkpoint, checkpoint_settings
from .contexts import Contexts, background_params, choose_coalition, draw_backgrounds, draw_contexts
from .effects import (
    Evaluator,
    PairStatistics,
    group_strength,
    main_effects,
    pair_chunks,
    pair_statistics,
    pair_tables,
    screen_pairs,
)
from .network import Network, split_network
from .options import PARAMETERS, RENAMED_OPTIONS, LayerArguments, Options, check_layer_arguments, make_options
from .players import Players, find_players, jaspar_matches


@renamed_arguments(**RENAMED_OPTIONS)
@declare(**PARAMETERS)
def interactions(
    model: nn.Module,
    layer: str,
    *,
    input_shape: Sequence[int],
    classes: Sequence[int] | int | None = None,
    at: str = "output",
    contexts: int = 128,
    context_on: float = 1 / 3,
    context_groups: int = 6,
    top: int = 24,
    min_effect: float = 0.1,
    scale: str = "auto",
    margin: float = 0.1,
    significance: float = 0.05,
    fdr: str = "class",
    groups: Sequence[int] | None = None,
    words: np.ndarray | None = None,
    group_threshold: float = 0.5,
    motif_words: str | np.ndarray = "scan",
    word_length: int | None = None,
    jaspar: str | None = "JASPAR2024",
    inputs: np.ndarray | torch.Tensor | None = None,
    backgrounds: int = 256,
    background: str | None = None,
    gc: float = 0.41,
    markov_order: int = 2,
    class_names: Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    verbose: bool = False,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    client: Any = None,
    output: Any = None,
    channels_last: bool = False,
    fixed_inputs: dict | None = None,
) -> Interactions:
    """Pairwise interactions of a layer's channels and motif groups for each class output, without a data set.

    See the module docstring for the method (random-context second differences), the null behind the p-values
    and the cost.

    Parameters
    ----------
    model : nn.Module
        Takes one-hot (N, 4, L).
    layer : str
        Module name (``model.named_modules()``); H is its output (``at="output"``) or input.
    input_shape : (4, L)
    classes : int or sequence of int, optional
        Output indices (default all).
    at : {"output", "input"}
        Analyse the layer's output or its input; a deeper layer (not a first convolution) needs "output" unless
        ``words`` are given.
    contexts : int
        n, the number of random contexts every statistic is averaged over.
    context_on : float
        Probability that each of the ``context_groups`` coalition groups (the strongest alone or with one
        partner; see the module docstring) is switched on in a context. 0 gives pure background contexts; 0.5 a
        Banzhaf-style average over coalitions. The default 1/3 keeps a third-motif condition visible (e.g. set
        I's AND partner) while other motifs are present often enough to show interactions that need them.
    context_groups : int
        Groups in the coalition.
    top : int
        Pairs are evaluated among each class's ``top`` channels and ``top`` groups by relative strength: the
        larger of |main effect| relative to the class's largest on the output scale and on the logit scale (for a
        group, at least its relative strength alone or with one partner). Also the most words the scan keeps.
    min_effect : float
        Players whose relative strength (see ``top``) is below this fraction are left out of the pairs: their
        interactions are NaN.
    scale : {"auto", "probability", "logit"}
        Output scale the interactions are measured on. Logic is a statement about the output probability: a
        trained OR model keeps raising its logit when both motifs occur (super-additive logits, +5 measured)
        while its probability saturates (antagonism), and set I's AND partners are sub-additive in logits but
        synergistic in probability. "probability" applies a sigmoid to each output; "auto" (default) does so
        when the model ends in a sigmoid/softmax, and uses the raw output otherwise (regression models).
    margin : float
        The null hypothesis of the p-values: the pair's interaction is at most ``margin`` times the class's output
        range (an effectively additive pair: the largest mean output of any truth table evaluated, less the
        smallest); one-sided t-test over the contexts.
    significance : float
        Significance level: a pair whose Benjamini-Hochberg q-value (of the family ``fdr``) is below it is called
        significant (``Interactions.table``, the summaries, the figures): a false discovery rate. Formerly
        ``alpha``, which still works with a FutureWarning.
    fdr : {"class", "all"}
        The family the q-values that decide significance are computed over: each class's pairs of a level
        ("class", default: which pairs act together for this output), or all classes' pairs of a level ("all":
        for a screen over many outputs, e.g. a 919-class model, where a per-class rate would let about
        ``significance`` of the classes without any interaction each show a false pair). The result keeps both
        (``qvalues``, ``qvalues_all``).
    groups : (K,) int, optional
        Motif group of each channel, instead of grouping by co-activation or the word scan.
    words : (K, 4, w) one-hot, optional
        Preferred word of each channel (e.g. known motifs), instead of the filter consensus or the ascent.
    group_threshold : float
        Relative response (above the level on the backgrounds) that makes two channels one group
        (:func:`~.players.motif_groups`), or a channel a member of a scanned word's group.
    motif_words : {"scan", "filters"} or (G, 4, w) one-hot
        Where the motif groups and their words come from: "scan" (default), the word scan
        (:func:`~.words.scan_words`); "filters", channels grouped by their responses to each other's filter words;
        or the groups' words themselves (known motifs: which of them interact?), w <= L // 2, a zero column
        keeping the background's base; each channel then joins the group whose word raises it most, as in the
        scan. See the module docstring.
    word_length : int, optional
        k of the word scan: 4^k x 4 body passes. Default 8 for inputs up to 200 bp, else 6 (a 1000-bp DeepSEA
        body pass costs about 20 ms on one CPU thread: 16,384 passes are minutes, 262,144 an hour and a half);
        never more than the channels' word width or L // 2.
    jaspar : str or None
        JASPAR release (bundled with pyjaspar, CORE vertebrates) each group's PWM is matched against by Tomtom
        (``Interactions.group_matches``); None leaves the matching out.
    inputs : (N, 4, L) one-hot, optional
        Real sequences (e.g. a few hundred from the training set) for the backgrounds "shuffle" and "markov".
    backgrounds : int
        Background sequences drawn. Each context takes one at random: all different when ``contexts <=
        backgrounds``, else drawn with replacement.
    background : {"uniform", "gc", "shuffle", "markov"}, optional
        The contexts' background sequences (N, 4, L): "uniform", i.i.d. uniform bases; "gc", i.i.d. bases with GC
        fraction ``gc``; "shuffle", dinucleotide shuffles of ``inputs``; "markov", samples of the order
        ``markov_order`` Markov chain fitted on ``inputs`` (their (k+1)-mer counts plus one). Default None:
        "shuffle" with ``inputs``, "uniform" without. "shuffle" and "markov" need ``inputs``; "uniform" and "gc"
        refuse them (they would be ignored). A model trained on a genome reads uniform random DNA off its
        training distribution (the human genome's GC fraction is about 0.41, its CpG frequency about 1/100, not
        1/16): "gc", or "markov" on real sequences, keeps the contexts closer to what it was trained on. The on-levels
        and the word scan keep uniform random sequences whatever the background. Recorded in ``params``
        (``background``, with ``gc`` or ``markov_order`` where they apply).
    gc : float
        GC fraction of the "gc" background, in (0, 1); default 0.41, the human genome's mean. Used by "gc" alone.
    markov_order : int
        k of the "markov" background, 0 to 10 and below L: each base depends on the k before it (0: the inputs'
        base composition; 1 keeps their dinucleotide frequencies, e.g. CpG depletion; default 2, their
        trinucleotides). Used by "markov" alone.
    class_names : sequence of str, optional
        Names of every output or of the chosen classes.
    channel_names : sequence of str, optional
        Names of the K channels (default ``"ch{k}"``).
    seed : int
        Drives every random choice: the backgrounds (their bases; which ``inputs`` are shuffled, and how), the random
        sequences and places of the on-levels' words, of the given motif words and of the word scan, the
        contexts' backgrounds, slot layouts and channel positions (a stream of their own), each group's coins
        and slot priorities (a stream keyed by the seed and the group's word), and a deeper layer's
        receptive-field ascent.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    batch_size : int, optional
        Sequences per forward pass, in every stage (default 4096): the backgrounds' maps, the on-levels, the
        word scan (whole k-mers per pass, at least one k-mer's 4 random sequences, or 16 on its second read) and
        the evaluations (body, then head). It bounds memory; ``resolve``'s own ``batch_size`` (ascent rows) is
        not this one.
    verbose : bool
        Print the numbers of players, pairs and evaluations before the pairs are evaluated.
    checkpoint : path, optional
        A folder where each stage's result is written as it finishes (atomically; :mod:`.checkpoint`): the
        players (the word scan included), the groups' strength, the main effects, and the pairs chunk by chunk
        (:func:`~.effects.pair_chunks`: their truth tables and the standard errors of their second differences).
        A rerun of the same call, even after ``kill -9``, skips every finished stage and chunk and gives the
        result an uninterrupted run gives, to the last bit (batch size and device may differ, at the cost of
        that: which rows are evaluated together moves the logits in their last float32 bits). One with another
        model (fingerprint of its structure and weights) or another setting that changes results is refused
        with a :class:`~deepresolve.errors.CheckpointError` naming each setting that differs; ``significance``,
        ``fdr`` and ``jaspar`` are not such settings. The folder is held by this call alone while it runs.
    progress : bool
        Show progress bars, with the time left, over the word scan's k-mers and over the pairs.
    client : distributed.Client, optional
        Evaluate the pairs on a Dask cluster (:mod:`deepresolve.distributed`): the chunks of pairs
        (:func:`~.effects.pair_chunks`) not yet in ``checkpoint`` are one task each; the split network is pickled
        before any work (a model that cannot be is refused at once) and sent to the cluster once, with the contexts
        and players, when the pairs are reached; every finished chunk is written to ``checkpoint`` as it arrives,
        so a rerun (after ``kill -9`` of this process too) resumes at chunk level. The chunks are a local run's, each
        evaluated as locally: the result equals a local run's to the last bit on the same kind of processor (the
        same batch size; another device or number of threads may move the logits in their last float32 bits). The
        word scan, the groups' strength and the main effects stay on this process (a small share of the
        evaluations when there are many pairs; see Cost in the module docstring). ``device=None`` lets each worker
        choose its own device (CUDA when it has one); the network travels on this process's device, so a process
        with a GPU whose workers have none needs ``device="cpu"``.
    output, channels_last, fixed_inputs
        Adapters for models as published (a tuple, dict or profile output; ``(N, L, 4)`` input; constant forward
        arguments), as in :func:`deepresolve.resolve` (:mod:`deepresolve.split.adapters`).

    Returns
    -------
    Interactions
    """
    opts = make_options(input_shape=input_shape, at=at, contexts=contexts, context_on=context_on,
                        context_groups=context_groups, top=top, min_effect=min_effect, scale=scale, margin=margin,
                        significance=significance, fdr=fdr, group_threshold=group_threshold, motif_words=motif_words,
                        word_length=word_length, jaspar=jaspar, inputs=inputs, backgrounds=backgrounds,
                        background=background, gc=gc, markov_order=markov_order, seed=seed, device=device,
                        batch_size=batch_size, verbose=verbose)
    fingerprint = None if checkpoint is None else model_fingerprint(model)
    model = adapt(model, output, channels_last, fixed_inputs)
    net = split_network(model, layer, length=opts.length, at=opts.at, scale=opts.scale, device=opts.device)
    packed = None if client is None else pack(net, "model")  # a network that cannot travel is refused before work
    args = check_layer_arguments(net, layer, opts, classes=classes, class_names=class_names,
                                 channel_names=channel_names, words=words, groups=groups)
    adapters = adapter_params(output, channels_last, fixed_inputs)
    with ExitStack() as held:  # the checkpoint folder is held by this call alone until its last pairs are written
        ckpt = Checkpoint(None)
        if checkpoint is not None:
            held.enter_context(exclusive(checkpoint, "checkpoint"))
            ckpt = Checkpoint.at(checkpoint, checkpoint_settings(
                model=fingerprint, layer=layer, classes=args.classes, opts=opts, words=args.words,
                groups=args.groups, adapters=adapters, fixed_inputs=fixed_inputs))
        rng = np.random.default_rng(opts.seed)  # the backgrounds', then the players'; the contexts have their own
        background_seqs = draw_backgrounds(rng, opts)
        players = ckpt.players(lambda: find_players(model, layer, net, background_seqs, opts, rng, words=args.words,
                                                    groups=args.groups, progress=progress))
        ctx = draw_contexts(opts, background_seqs, width=players.group_words.shape[2], channels=net.channels,
                            positions=net.positions, group_words=players.group_words)
        # the coalition: the distinct motifs strongest alone or with one partner, in pure background contexts
        alone = Evaluator(net, ctx, players, torch.zeros(ctx.coin.shape, dtype=torch.bool), args.classes, opts.batch)
        strength = ckpt.stage("strength", lambda: {"strength": group_strength(alone, opts.top)})["strength"]
        coalition, coalition_groups = choose_coalition(ctx, strength, opts.context_groups, players.copies)
        ev = Evaluator(net, ctx, players, coalition, args.classes, opts.batch)
        effects = ckpt.stage("main-effects", lambda: dict(zip(("main", "logit"), main_effects(
            ev, np.arange(players.channels + players.n_groups)))))
        main, logit = effects["main"], effects["logit"]
        channel_pairs, group_pairs = screen_pairs(main, logit, strength, channels=players.channels, top=opts.top,
                                                  min_effect=opts.min_effect)
        if opts.verbose:
            _report(players, ctx, channel_pairs, group_pairs)
        pairs = np.concatenate([channel_pairs, group_pairs])
        remote = None if client is None else partial(
            client_map, client, _pair_task, packed,
            shared=[(ctx, players, coalition, args.classes, opts.batch), device], name="pairs")
        tables, se = _pair_stage(ev, pairs, ckpt, progress, remote)
    stats = pair_statistics(tables, se, contexts=ctx.n, margin=opts.margin)
    return _result(layer, opts, net, args, players, main, channel_pairs, group_pairs, stats, coalition_groups,
                   adapters)


def _pair_stage(ev: Evaluator, pairs: np.ndarray, ckpt: Checkpoint, progress: bool,
                remote: Callable[..., None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Truth tables (C, P, 2, 2) and standard errors (C, P) of ``pairs`` (P, 2) (:func:`~.effects.pair_tables`),
    chunk by chunk (:func:`~.effects.pair_chunks`): the chunks in ``ckpt`` are read, the others evaluated and
    written as each finishes; here with ``ev``, or on a Dask cluster by ``remote(chunks, on_result)``
    (:func:`deepresolve.distributed.client_map` with :func:`_pair_task`, each chunk's argument its pairs)."""
    C = len(ev.classes)
    chunks = pair_chunks(len(pairs), ev.n, C)

    def fits(arrays: dict[str, np.ndarray], chunk: slice) -> None:
        P = chunk.stop - chunk.start
        if (not np.array_equal(arrays["pairs"], pairs[chunk]) or arrays["tables"].shape != (C, P, 2, 2)
                or arrays["se"].shape != (C, P)):
            raise ValueError("its pairs or shapes do not fit this analysis")

    found = [ckpt.read(f"pairs-{i:06d}", lambda a, c=chunk: fits(a, c)) for i, chunk in enumerate(chunks)]
    todo = [i for i, f in enumerate(found) if f is None]
    left = sum(chunks[i].stop - chunks[i].start for i in todo)
    with progress_bar("interactions", "pairs", len(pairs), done=len(pairs) - left, show=progress) as advance:
        def finished(i: int, result: tuple[np.ndarray, np.ndarray]) -> None:
            found[i] = {"pairs": pairs[chunks[i]], "tables": result[0], "se": result[1]}
            ckpt.write(f"pairs-{i:06d}", found[i])
            if advance is not None:
                advance(chunks[i].stop - chunks[i].start)

        if remote is None:
            for i in todo:
                finished(i, pair_tables(ev, pairs[chunks[i]]))
        else:
            remote([(pairs[chunks[i]],) for i in todo], lambda j, result: finished(todo[j], result))
    return (np.concatenate([f["tables"] for f in found], axis=1), np.concatenate([f["se"] for f in found], axis=1))


def _pair_task(net: Network, inputs: tuple, device: torch.device | None, pairs: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """On a Dask worker: :func:`~.effects.pair_tables` of one chunk of ``pairs`` with the network ``net`` moved to
    ``device`` (None: CUDA when the worker has it, else its CPU) and the Evaluator's other ``inputs``."""
    dev = check_device(device)
    net = replace(net, body=net.body.to(dev), head=net.head.to(dev), device=dev)
    return pair_tables(Evaluator(net, *inputs), pairs)


def _report(players: Players, ctx: Contexts, channel_pairs: np.ndarray, group_pairs: np.ndarray) -> None:
    n_pairs = len(channel_pairs) + len(group_pairs)
    print(f"interactions: {players.channels} channels, {players.n_groups} groups ({players.how}); "
          f"{len(channel_pairs)} channel + {len(group_pairs)} group pairs x {ctx.n} contexts x 4 = "
          f"{4 * ctx.n * n_pairs:,} evaluations", flush=True)


def _result(layer: str, opts: Options, net: Network, args: LayerArguments, players: Players, main: np.ndarray,
            channel_pairs: np.ndarray, group_pairs: np.ndarray, stats: PairStatistics,
            coalition_groups: np.ndarray, adapters: dict[str, Any]) -> Interactions:
    """The result: the statistics of the pairs (channel pairs first, then group pairs) split by level, and every
    setting in ``params``."""
    K, P = players.channels, len(channel_pairs)
    return Interactions(
        classes=np.asarray(args.classes), class_names=args.class_names, channel_names=args.channel_names,
        groups=players.groups, main=main[:, :K], pairs=channel_pairs, values=stats.values[:, :P],
        pvalues=stats.pvalues[:, :P], tables=stats.tables[:, :P], group_main=main[:, K:], group_pairs=group_pairs - K,
        group_values=stats.values[:, P:], group_pvalues=stats.pvalues[:, P:], group_tables=stats.tables[:, P:],
        on_levels=players.on_levels, words=players.words, group_words=players.group_words,
        group_pwms=players.group_pwms, group_copies=players.copies,
        group_matches=None if opts.jaspar is None else jaspar_matches(players.group_pwms, opts.jaspar), layer=layer,
        params=dict(at=opts.at, scale=net.scale, contexts=opts.contexts, min_effect=opts.min_effect,
                    context_on=opts.context_on, context_groups=opts.context_groups, top=opts.top, margin=opts.margin,
                    margin_of="output range",
                    significance=opts.significance, fdr=opts.fdr, group_threshold=opts.group_threshold,
                    motif_words=opts.motif_words, word_length=opts.word_length, jaspar=opts.jaspar,
                    backgrounds=opts.backgrounds, **background_params(opts),
                    on_levels=players.how, coalition_groups=coalition_groups.tolist(), seed=opts.seed,
                    input_shape=[4, opts.length], **adapters),
    )
