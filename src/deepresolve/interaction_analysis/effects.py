"""Evaluation of switched-on players in the contexts, and the statistics: main effects, the groups' strength
alone or with one partner, the choice of pairs, and the pairs' truth tables, interactions and p-values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import t as student_t

from .contexts import Contexts
from .network import Network, as_channels, write_words
from .players import Players


class Evaluator:
    """Builds the inputs of every row in batches and returns the class logits.

    A row is (context, players a and b switched on or -1, groups dropped from the coalition). Groups are
    switched on in sequence space: the group's word is written into the context's background sequence at one of
    the context's slots (slot 0 for a, 1 for b, the coalition's groups from slot 2 on, in the order of the
    context's priorities for them, as far as slots last); the body gives the layer's map; channels are then
    switched on in feature space at the context's position for them, ``H[k, w] = max(H[k, w], a_k)``; the head
    gives the logits.

    Parameters
    ----------
    net, contexts, players
        The split model, the contexts and the players.
    coalition : (n, G) bool tensor
        The coalition's groups present in each context.
    classes : list of int
        The outputs returned, in this order.
    batch : int
        Rows (sequences) per forward pass.
    """

    def __init__(self, net: Network, contexts: Contexts, players: Players, coalition: torch.Tensor,
                 classes: list[int], batch: int):
        self.body, self.head, self.shape, self.squash = net.body, net.head, net.map_shape, net.squash
        self.seqs, self.starts = contexts.sequences, contexts.starts  # (n, 4, L), (n, slots)
        self.priority = contexts.priority  # (n, G)
        self.words = torch.from_numpy(players.group_words).float()  # (G, 4, w)
        self.on, self.pos, self.coalition = torch.from_numpy(players.on_levels).float(), contexts.positions, coalition
        self.player_groups, self.copies = players.player_groups, torch.from_numpy(players.copies)
        self.K, self.classes = players.channels, torch.as_tensor(classes)
        self.device, self.batch = net.device, batch

    @property
    def n(self) -> int:
        """Contexts."""
        return len(self.seqs)

    @property
    def G(self) -> int:
        """Motif groups."""
        return len(self.words)

    def dropped(self, players: np.ndarray) -> torch.Tensor:
        """(G,) bool: the groups a row that switches ``players`` on leaves out of the coalition, their groups and
        every copy of them (a copy of i in the coalition would switch i's motif on where i is meant to be off)."""
        groups = np.concatenate([self.player_groups[p] for p in players]).astype(int)
        return self.copies[groups].any(0)

    def _write(self, x: torch.Tensor, rows: torch.Tensor, groups: torch.Tensor, starts: torch.Tensor) -> None:
        """The words of ``groups`` into rows ``rows`` of ``x`` from ``starts`` on; a word's zero columns keep the
        background base (words of different lengths share one width)."""
        write_words(x, rows, self.words[groups], starts)

    def _rows(self, ctx: torch.Tensor, on: torch.Tensor, drop: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Each row's key (rows, 1 + G + 4): its context, the coalition groups it writes, the groups written into
        slots 0 and 1 and the channels switched on (-1 none), so that rows with equal keys have equal inputs and
        maps; and the number of leading columns that fix the sequence (the body's input)."""
        groups = torch.where(on >= self.K, on - self.K, torch.full_like(on, -1))
        channels = torch.where((on >= 0) & (on < self.K), on, torch.full_like(on, -1)).sort(1).values
        active = self.coalition[ctx] & ~drop
        return torch.cat([ctx[:, None], active.long(), groups, channels], 1), 1 + self.G + 2

    @torch.no_grad()
    def __call__(self, ctx: torch.Tensor, on: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        """Logits (rows, C). ctx (rows,) context; on (rows, 2) players switched on (-1 none); drop (rows, G).

        Rows with the same input (e.g. v(S) and v(S + i) of a context's many pairs) are evaluated once, and the
        body once for rows that differ only in the channels they switch on: the rows' logits do not depend on
        which rows are evaluated together."""
        keys, seq_cols = self._rows(ctx, on, drop)
        unique, row_of = torch.unique(keys, dim=0, return_inverse=True)  # sorted: equal sequences are adjacent
        out = []
        for s in range(0, len(unique), self.batch):
            out.append(self._evaluate(unique[s:s + self.batch], seq_cols))
        return torch.cat(out)[row_of] if out else torch.zeros(0, len(self.classes))

    def _evaluate(self, keys: torch.Tensor, seq_cols: int) -> torch.Tensor:
        """Logits (rows, C) of distinct row keys (:meth:`_rows`); the body runs once per distinct sequence."""
        seqs, seq_of = torch.unique(keys[:, :seq_cols], dim=0, return_inverse=True)
        c, active, g = seqs[:, 0], seqs[:, 1:1 + self.G].bool(), seqs[:, 1 + self.G:]
        r = torch.arange(len(c))
        x = self.seqs[c].clone()
        n_slots = self.starts.shape[1]
        # coalition groups from slot 2 on, by the context's priorities (not by group index: which slot a group
        # takes must not depend on the other groups found)
        order = torch.argsort(self.priority[c], dim=1)
        slot = torch.empty_like(order).scatter_(1, order, 1 + torch.cumsum(active.gather(1, order).long(), 1))
        for grp in torch.nonzero(active.any(0)).flatten().tolist():
            rows = r[active[:, grp] & (slot[:, grp] < n_slots)]
            if len(rows):
                self._write(x, rows, torch.full((len(rows),), grp), self.starts[c[rows], slot[rows, grp]])
        for col in range(2):
            rows = r[g[:, col] >= 0]
            if len(rows):
                self._write(x, rows, g[rows, col], self.starts[c[rows], col])
        h = as_channels(self.body(x.to(self.device)).float())[seq_of]
        r, c, k_on = torch.arange(len(keys)), keys[:, 0], keys[:, seq_cols:]
        for col in range(2):
            rows = r[k_on[:, col] >= 0]
            k = k_on[rows, col]
            w = self.pos[c[rows], k]
            h[rows, k, w] = torch.maximum(h[rows, k, w], self.on[k].to(h.device))
        logits = self.head(h.reshape(len(keys), *self.shape)).float()
        return logits[:, self.classes].cpu()


def main_effects(ev: Evaluator, players: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Main effects (C, len(players)), the mean over contexts of v(S + p) - v(S) with S the context without p's
    group and its copies (:meth:`Evaluator.dropped`): on the output scale (the sigmoid of the logits when
    ``ev.squash``) and on the logit scale."""
    m = len(players)
    ctx = torch.arange(ev.n).repeat_interleave(2 * m)
    pl = torch.as_tensor(players).repeat(ev.n).repeat_interleave(2)
    on = torch.stack([torch.where(torch.arange(len(pl)) % 2 == 1, pl, torch.full_like(pl, -1)),
                      torch.full_like(pl, -1)], 1)
    drop_p = torch.stack([ev.dropped([p]) for p in players])
    drop = drop_p.repeat(ev.n, 1).repeat_interleave(2, 0)
    v = ev(ctx, on, drop).reshape(ev.n, m, 2, -1).double()
    logit = (v[:, :, 1] - v[:, :, 0]).mean(0).T.numpy()
    if not ev.squash:
        return logit, logit
    p = torch.sigmoid(v)
    return (p[:, :, 1] - p[:, :, 0]).mean(0).T.numpy(), logit


def relative_strength(main: np.ndarray, logit: np.ndarray) -> np.ndarray:
    """(C, m) each player's |main effect| relative to the class's largest, the larger of the output scale's and
    the logit scale's: a motif whose effect the sigmoid hides (saturated, or needing partners that are absent)
    still shows in the logit."""
    def rel(m):
        top = np.abs(m).max(1, keepdims=True)
        return np.abs(m) / np.where(top > 0, top, np.inf)
    return np.maximum(rel(main), rel(logit))


def group_strength(ev: Evaluator, top: int) -> np.ndarray:
    """(C, G) strength of each group alone or with one partner: the larger of its relative |main effect|
    (:func:`relative_strength`) and, for the ``2 top`` groups strongest alone, its largest relative |joint effect|
    v(S+g+h) - v(S) over partners h among them, on the output scale and on the logit scale. A motif that acts
    only with two partners (a 3-way AND) has no main effect and no single-partner effect on the output scale,
    but a joint effect with one partner in logits."""
    K, G = ev.K, ev.G
    single = relative_strength(*main_effects(ev, np.arange(K, K + G)))
    screened = np.sort(np.argsort(-single.max(0), kind="stable")[:2 * top])
    pairs = np.array([(K + a, K + b) for x, a in enumerate(screened) for b in screened[x + 1:]],
                     dtype=int).reshape(-1, 2)
    if not len(pairs):
        return single
    v = _pair_logits(ev, pairs)
    joints = [(v[:, :, 1, 1] - v[:, :, 0, 0]).mean(0).T.numpy()]  # (C, P)
    if ev.squash:
        v = torch.sigmoid(v)
        joints.append((v[:, :, 1, 1] - v[:, :, 0, 0]).mean(0).T.numpy())
    out = single.copy()
    for joint in joints:
        best = np.zeros_like(single)
        for col in range(2):
            np.maximum.at(best.T, pairs[:, col] - K, np.abs(joint).T)
        most = best.max(1, keepdims=True)
        out = np.maximum(out, best / np.where(most > 0, most, np.inf))
    return out


def screen_pairs(main: np.ndarray, logit: np.ndarray, strength: np.ndarray, *, channels: int, top: int,
                 min_effect: float) -> tuple[np.ndarray, np.ndarray]:
    """The pairs to evaluate: for each class, every pair among its ``top`` channels and among its ``top`` groups
    by relative strength, leaving out players below ``min_effect``.

    A channel's relative strength is :func:`relative_strength` of its main effects ``main`` and ``logit``
    (C, K + G); a group's the larger of that and its ``strength`` alone or with one partner (C, G,
    :func:`group_strength`), so that a group strong only with a partner is paired.

    Returns
    -------
    channel_pairs, group_pairs : (P, 2) and (Q, 2) int
        Player indices i < j (groups are players K..K+G-1), the union over classes, sorted.
    """
    K, G = channels, main.shape[1] - channels
    pair_sets = []
    for lo, hi in ((0, K), (K, K + G)):
        chosen_pairs = set()
        rel = relative_strength(main[:, lo:hi], logit[:, lo:hi])
        if lo == K:
            rel = np.maximum(rel, strength)
        for c in range(len(main)):
            best = np.argsort(-rel[c], kind="stable")[:top]
            best = lo + np.sort(best[rel[c, best] >= min_effect])
            chosen_pairs.update((int(a), int(b)) for x, a in enumerate(best) for b in best[x + 1:])
        pair_sets.append(np.array(sorted(chosen_pairs), dtype=int).reshape(-1, 2))
    return pair_sets[0], pair_sets[1]


@dataclass(frozen=True)
class PairStatistics:
    """Statistics of P pairs for C classes: ``tables`` (C, P, 2, 2), the mean output with i off/on (axis 2) and j
    off/on (axis 3); ``values`` (C, P), the interactions t11 - t10 - t01 + t00; ``pvalues`` (C, P)."""

    tables: np.ndarray
    values: np.ndarray
    pvalues: np.ndarray


def pair_statistics(tables: np.ndarray, se: np.ndarray, *, contexts: int, margin: float) -> PairStatistics:
    """Interactions and p-values of P pairs from their truth tables ``tables`` (C, P, 2, 2) and the standard errors
    ``se`` (C, P) of their second differences over ``contexts`` contexts (:func:`pair_tables`).

    The p-value is a one-sided t-test over the contexts of the interval null ``|interaction| <= margin r_c``,
    ``r_c`` class c's output range over every truth table evaluated (channel and group pairs together): the
    largest mean output seen with players switched on or off, less the smallest.
    """
    values = tables[..., 1, 1] - tables[..., 1, 0] - tables[..., 0, 1] + tables[..., 0, 0]
    flat = np.where(np.isfinite(tables), tables, np.nan).reshape(len(tables), -1)
    with np.errstate(invalid="ignore"):  # a class without any finite table (or no pairs) has range 0
        scale_c = np.nan_to_num(np.fmax.reduce(flat, 1, initial=-np.inf) - np.fmin.reduce(flat, 1, initial=np.inf),
                                nan=0.0, posinf=0.0, neginf=0.0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stat = (np.abs(values) - margin * scale_c) / se
    pvalues = student_t.sf(t_stat, df=max(contexts - 1, 1))
    # no spread over the contexts: the interaction is exact
    pvalues = np.where(se > 0, pvalues, np.where(np.abs(values) > margin * scale_c, 0.0, 1.0))
    return PairStatistics(tables=tables, values=values, pvalues=pvalues)


#: The pair stage is evaluated in chunks of consecutive pairs, each reduced to its truth tables before the next (and
#: written to the checkpoint, if any): at most this many rows (4 per pair and context) per chunk (large, because rows
#: are shared only within a chunk: a context's v(S) and v(S + i) serve every pair of the chunk)...
PAIR_CHUNK_ROWS = 2 ** 17
#: ...and at most this many logits (4 per pair, context and class, float64) held at once.
PAIR_CHUNK_LOGITS = 2 ** 24


def pair_chunks(n_pairs: int, contexts: int, classes: int) -> list[slice]:
    """The chunks of the pair stage: consecutive pairs, as many per chunk as :data:`PAIR_CHUNK_ROWS` and
    :data:`PAIR_CHUNK_LOGITS` allow (at least one; one empty chunk when there are no pairs).

    They depend only on the numbers of pairs, contexts and classes, never on a checkpoint, the batch size or the
    device: which rows are evaluated together moves the logits in their last float32 bits (up to 1e-9 measured on
    the tables), so a run that resumes from a checkpoint evaluates the same chunks as one that never stopped and
    gives the same tables to the last bit.
    """
    size = max(1, min(PAIR_CHUNK_ROWS // (4 * contexts), PAIR_CHUNK_LOGITS // (4 * contexts * classes)))
    return [slice(s, min(s + size, n_pairs)) for s in range(0, max(n_pairs, 1), size)]


def _pair_logits(ev: Evaluator, pairs: np.ndarray) -> torch.Tensor:
    """Logits (n, P, 2, 2, C) of player pairs (P >= 1) in each context, with each player off/on.

    Of two groups, the one of lower priority in the context takes slot 0 (in all four rows), so that a pair's
    sequences do not depend on the groups' indices."""
    P, n = len(pairs), ev.n
    pr = torch.as_tensor(pairs).repeat(n, 1)  # (n*P, 2)
    ctx = torch.arange(n).repeat_interleave(P)
    g = (pr - ev.K).clamp(min=0)
    swap = (pr >= ev.K).all(1) & (ev.priority[ctx, g[:, 1]] < ev.priority[ctx, g[:, 0]])
    pr = torch.where(swap[:, None], pr.flip(1), pr).repeat_interleave(4, 0)  # (n*P*4, 2)
    ab = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]).repeat(n * P, 1)
    on = torch.where(ab.bool(), pr, torch.full_like(pr, -1))
    drop_pp = torch.stack([ev.dropped(pair) for pair in pairs])
    drop = drop_pp.repeat(n, 1).repeat_interleave(4, 0)
    v = ev(ctx.repeat_interleave(4), on, drop).reshape(n, P, 2, 2, -1).double()
    return torch.where(swap.reshape(n, P, 1, 1, 1), v.transpose(2, 3), v)


def pair_tables(ev: Evaluator, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Truth tables (C, P, 2, 2) of player pairs (P, 2) on the output scale, averaged over the contexts, and the
    standard errors (C, P) of their second differences: all that :func:`pair_statistics` needs of the
    (n, P, 2, 2, C) outputs."""
    n = ev.n
    if len(pairs) == 0:
        return np.zeros((len(ev.classes), 0, 2, 2)), np.zeros((len(ev.classes), 0))
    v = _pair_logits(ev, pairs)
    if ev.squash:
        v = torch.sigmoid(v)
    second = v[:, :, 1, 1] - v[:, :, 1, 0] - v[:, :, 0, 1] + v[:, :, 0, 0]  # (n, P, C)
    se = second.std(0, unbiased=True).T / np.sqrt(n) if n > 1 else torch.full(second.shape[1:], np.nan).T
    return v.mean(0).permute(3, 0, 1, 2).numpy(), se.numpy()
