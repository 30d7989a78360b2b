"""One self-contained HTML report of a DeepResolve result.

The file embeds every figure as a base64 PNG and its CSS and JavaScript inline, so it opens
offline, can be mailed, and needs no server. It is written section by section to a temporary
file beside ``out_path`` and renamed into place only when complete, so an interrupted run never
leaves a half-written report under the final name.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from torch import nn

from .. import similarity as sim
from .._checks import Array, Instance, Int, OptionalOf, OutputFile, Text, Via, declare
from .._files import write_atomic
from .._provenance import package_versions
from ..errors import ArgumentError
from ..results import Result, categories, check_result, groups_long
from . import plot

__all__ = ["write_report", "package_versions", "normalise_motif_matches"]

_TOP_PER_CLASS = 10
_MAX_NONADDITIVE_ROWS = 2000

_CSS = """
:root { --red: #c8102e; --blue: #1f5fbf; --ink: #1d232b; --muted: #5c6670; --line: #e3e6ea; --bg: #f7f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: var(--bg); }
header { background: #17212b; color: #fff; padding: 18px 28px 14px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header p { margin: 0; color: #c7d0d9; font-size: 13px; }
nav { position: sticky; top: 0; z-index: 5; background: #fff; border-bottom: 1px solid var(--line);
      padding: 8px 28px; font-size: 14px; }
nav a { margin-right: 18px; color: var(--blue); text-decoration: none; }
nav a:hover { text-decoration: underline; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 28px 60px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 6px 22px 18px; margin: 18px 0; }
h2 { font-size: 19px; margin: 14px 0 8px; }
h3 { font-size: 16px; margin: 16px 0 6px; }
.facts { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0 4px; padding: 0; list-style: none; }
.facts li { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; }
.facts b { display: block; font-size: 18px; }
.facts span { color: var(--muted); font-size: 12px; }
figure { margin: 10px 0 14px; overflow-x: auto; }
figure img { max-width: 100%; height: auto; display: block; }
figure img.wide { max-width: none; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; max-width: 900px; }
.note { background: #fff8e1; border-left: 4px solid #f2b600; padding: 8px 12px; margin: 10px 0; font-size: 14px; }
.tablewrap { max-height: 520px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; margin: 8px 0 12px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { position: sticky; top: 0; background: #eef1f4; cursor: pointer; user-select: none; white-space: nowrap; }
thead th::after { content: " \\2195"; color: #9aa3ab; font-size: 11px; }
thead th.asc::after { content: " \\2191"; color: var(--ink); }
thead th.desc::after { content: " \\2193"; color: var(--ink); }
tbody tr:hover { background: #f4f8ff; }
.pos { color: var(--red); font-weight: 600; }
.neg { color: var(--blue); font-weight: 600; }
.filter { margin: 6px 0; padding: 5px 9px; width: 320px; max-width: 100%; border: 1px solid #c9cfd5;
          border-radius: 5px; }
.params td:first-child { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: nowrap; }
.params td { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin: 24px 0; }
"""

# Click a header to sort (numbers numerically, using data-sort when present); type to filter.
_JS = """
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-sort');
    if (v === null) { v = cell.textContent.trim(); }
    var n = Number(v);
    return (v !== '' && !isNaN(n)) ? [0, n] : [1, v.toLowerCase()];
  }
  function compare(a, b) {
    if (a[0] !== b[0]) { return a[0] - b[0]; }
    return a[1] < b[1] ? -1 : (a[1] > b[1] ? 1 : 0);
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener('click', function () {
        var asc = !th.classList.contains('asc');
        Array.prototype.forEach.call(heads, function (h) { h.classList.remove('asc', 'desc'); });
        th.classList.add(asc ? 'asc' : 'desc');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var c = compare(key(r1.cells[col]), key(r2.cells[col]));
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll('input.filter').forEach(function (input) {
    var table = document.getElementById(input.getAttribute('data-table'));
    input.addEventListener('input', function () {
      var q = input.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
      });
    });
  });
})();
"""


# --------------------------------------------------------------------------- small helpers

def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "nan"
    return f"{float(value):.{digits}g}"


def _png(fig: Figure, dpi: int = 90) -> tuple[str, int]:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    data = buf.getvalue()
    width = int.from_bytes(data[16:20], "big")  # PNG IHDR width
    return base64.b64encode(data).decode("ascii"), width


def _figure_html(fig: Figure, alt: str, caption: str = "", dpi: int = 90) -> str:
    data, width = _png(fig, dpi)
    wide = width > 1500  # much wider than the page: scroll sideways rather than shrink the text away
    if wide:
        caption = (caption + " " if caption else "") + "(Wide figure: scroll sideways.)"
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    wide = ' class="wide"' if wide else ""
    return (f'<figure><img{wide} src="data:image/png;base64,{data}" alt="{_esc(alt)}" width="{width}">'
            f"{cap}</figure>\n")


def _cell(value: object, sort: object | None = None, cls: str = "") -> str:
    attr = f' data-sort="{_esc(sort)}"' if sort is not None else ""
    klass = f' class="{cls}"' if cls else ""
    return f"<td{klass}{attr}>{_esc(value)}</td>"


def _num(value: float, digits: int = 3, signed: bool = False) -> str:
    v = float(value)
    if not np.isfinite(v):
        return '<td class="num" data-sort="">nan</td>'
    cls = "num" + ((" pos" if v > 0 else " neg" if v < 0 else "") if signed else "")
    text = f"{v:+.{digits}g}" if signed else f"{v:.{digits}g}"
    return f'<td class="{cls}" data-sort="{v!r}">{text}</td>'


def _table(table_id: str, headers: list[str], rows: list[str], filter_box: bool = False) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    box = (f'<input class="filter" type="search" placeholder="filter rows..." data-table="{table_id}" '
           f'aria-label="filter table">') if filter_box else ""
    body = "\n".join(f"<tr>{r}</tr>" for r in rows)
    return (f'{box}<div class="tablewrap"><table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>\n")


# --------------------------------------------------------------------------- inputs

_CHANNEL_COLUMNS = ("channel", "query", "query_id")
_TARGET_COLUMNS = ("target", "name", "target_name", "motif", "target_id")
_P_COLUMNS = ("p-value", "p_value", "pvalue", "p")


def normalise_motif_matches(motif_matches: pd.DataFrame, channel_names: list[str]) -> pd.DataFrame:
    """Validate motif matches and return columns ``k`` (channel row), ``target``, ``p`` sorted by p-value.

    Accepts a channel column named ``channel`` or ``query`` holding channel indices or channel
    names (digit strings such as Tomtom's default query names ``"0"``, ``"1"`` count as indices), a
    target column named ``target``/``name``/``target_name``/``motif``/``target_id``, and a p-value
    column named ``p-value``/``p_value``/``pvalue``/``p`` (case-insensitive), so the table of
    :func:`deepresolve.motifs.tomtom_matches` can be passed as it is.
    """
    if not isinstance(motif_matches, pd.DataFrame):
        raise ArgumentError(f"motif_matches: expected a pandas DataFrame, got {type(motif_matches).__name__}")
    lower = {str(c).lower(): c for c in motif_matches.columns}
    found = {}
    for role, options in (("channel", _CHANNEL_COLUMNS), ("target", _TARGET_COLUMNS), ("p", _P_COLUMNS)):
        hit = next((lower[o] for o in options if o in lower), None)
        if hit is None:
            raise ArgumentError(f"motif_matches: expected a column named one of {list(options)}, "
                                f"got columns {list(motif_matches.columns)}")
        found[role] = hit
    channels = motif_matches[found["channel"]]
    K = len(channel_names)
    if pd.api.types.is_integer_dtype(channels):
        k = channels.to_numpy(dtype=int)
        bad = (k < 0) | (k >= K)
        if bad.any():
            raise ArgumentError(f"motif_matches: expected channel indices in [0, {K - 1}], got "
                                f"{sorted(set(k[bad].tolist()))[:5]}")
    else:
        index = {name: i for i, name in enumerate(channel_names)}
        as_text = channels.astype(str)
        unknown = sorted(set(as_text) - set(index))
        if unknown and all(t.isdigit() and int(t) < K for t in set(as_text)):  # numbered queries
            index, unknown = {str(i): i for i in range(K)}, []
        if unknown:
            raise ArgumentError(f"motif_matches: expected channel names of the result ({', '.join(channel_names[:5])}, "
                                f"...), got {unknown[:5]}")
        k = as_text.map(index).to_numpy(dtype=int)
    p = pd.to_numeric(motif_matches[found["p"]], errors="coerce")
    if p.isna().any():
        raise ArgumentError(f"motif_matches: expected numbers in column {found['p']!r}, "
                            f"got {motif_matches[found['p']][p.isna()].head(3).tolist()}")
    out = pd.DataFrame({"k": k, "target": motif_matches[found["target"]].astype(str).to_numpy(), "p": p.to_numpy()})
    return out.sort_values(["k", "p"], kind="stable", ignore_index=True)


def _best_matches(matches: pd.DataFrame | None, K: int) -> list[tuple[str, float, str]]:
    """Per channel: (best target, its p-value, up to three targets as text)."""
    best: list[tuple[str, float, str]] = [("", float("nan"), "")] * K
    if matches is None:
        return best
    for k, group in matches.groupby("k", sort=False):
        top = group.head(3)
        best[int(k)] = (str(top["target"].iloc[0]), float(top["p"].iloc[0]),
                        ", ".join(f"{t} ({p:.2g})" for t, p in zip(top["target"], top["p"])))
    return best


def _check_pwms(pwms: object, K: int) -> np.ndarray | None:
    if pwms is None:
        return None
    arr = np.asarray(pwms, dtype=float)
    if arr.ndim != 3 or arr.shape[0] != K or arr.shape[1] != 4:
        raise ArgumentError(f"pwms: expected shape (K={K}, 4, w), got {arr.shape}")
    return arr


def _similarity_matrices(result: Result, labels: object, cosine: np.ndarray | None,
                         similarity: Mapping[str, np.ndarray] | None, notes: list[str]) -> dict[str, np.ndarray]:
    C = result.n_classes
    if similarity is not None:
        for name, m in similarity.items():
            shape = np.shape(m)
            if shape != (C, C):
                raise ArgumentError(f"similarity[{name!r}]: expected shape ({C}, {C}), got {shape}")
        return {str(k): np.asarray(v, dtype=float) for k, v in similarity.items()}
    if C < 2:
        return {}
    out = {"class_similarity": sim.class_similarity(result)}
    if labels is not None:
        lab = np.asarray(labels, dtype=float)
        if lab.ndim != 2:
            raise ArgumentError(f"labels: expected an (N, C) label matrix, got shape {lab.shape}")
        if lab.shape[1] != C:
            if lab.shape[1] > int(np.max(result.classes)):
                lab = lab[:, np.asarray(result.classes, dtype=int)]
            else:
                raise ArgumentError(f"labels: expected {C} columns (one per analysed class) or one per model output "
                                 f"(> {int(np.max(result.classes))}), got {lab.shape[1]}")
        out["label_correlation"] = sim.label_correlation(lab)
    out["ofiv_correlation"] = sim.ofiv_correlation(result)
    if cosine is not None:
        out["weight_cosine"] = cosine
    return out


def _weight_cosine(result: Result, model: nn.Module) -> np.ndarray:
    """The last-layer weight cosine of ``model``, refused when its outputs are not those the result was computed on."""
    return sim.weight_cosine(model, classes=np.asarray(result.classes, dtype=int),
                             n_outputs=result.params.get("n_outputs"))


def _section_rows(result: Result, max_class_sections: int, notes: list[str]) -> list[int]:
    C = result.n_classes
    if max_class_sections >= C:
        return list(range(C))
    non_additive = [i for i in range(C) if int(result.n_components[i]) > 1]
    rest = [i for i in range(C) if int(result.n_components[i]) <= 1]
    rows = sorted((non_additive + rest)[:max_class_sections])
    notes.append(
        f"{C} classes were analysed; to keep this file small only {len(rows)} get a section with figures "
        f"(classes with non-additive channels first, then in result order; raise max_class_sections for more). "
        f"The class index below lists all of them.")
    return rows


# --------------------------------------------------------------------------- sections

def _summary_section(result: Result, notes: list[str], title: str) -> str:
    C, T, K = result.fivs.shape
    W = result.n_positions
    steps = np.asarray(result.steps)
    facts = [
        (result.layer_label if result.layer else "?", "layer"), (C, "classes"), (T, "restarts per class"),
        (K, "channels"),
        (W, "positions (W)"), (f"{float(np.mean(steps)):.1f}", "mean ascent steps"),
        (int((np.asarray(result.n_components) > 1).sum()), "classes with non-additive channels"),
        (int(np.asarray(result.non_additive).sum()), "non-additive (class, channel) pairs"),
    ]
    parts = [f'<section id="summary"><h2>{_esc(title)}</h2><ul class="facts">']
    parts += [f"<li><b>{_esc(v)}</b><span>{_esc(k)}</span></li>" for v, k in facts]
    parts.append("</ul>")
    parts += [f'<div class="note">{_esc(n)}</div>' for n in notes]
    parts.append(
        "<p>DeepResolve (Liu, Zeng &amp; Gifford, BMC Bioinformatics 2019) finds, for each output class, the "
        "feature map of the chosen layer that maximises the class score by gradient ascent from several random "
        "starts. The spatial mean of each optimised map is a feature importance vector (FIV); their weighted "
        "variance over restarts is the inconsistency level (IL) that marks <em>non-additive</em> channels; the "
        "overall FIV (OFIV) summarises each channel's contribution: "
        '<span class="pos">red = favoured</span>, <span class="neg">blue = unfavoured</span>.</p>')
    if result.interactions is not None:
        ix = result.interactions
        parts.append(
            f"<p>Feature interactions (an addition to the paper): second differences of each class output when motif "
            f"groups and channels of the layer are switched on in {_esc(ix.params.get('contexts'))} random contexts "
            f"({_esc(ix.params.get('scale'))} scale); &gt; 0 synergy (AND-like), &lt; 0 antagonism (XOR-, OR- or "
            f"veto-like), the truth tables tell which. Each class section shows them.</p>")
    parts.append("</section>\n")
    return "".join(parts)


def _params_section(result: Result) -> str:
    versions = package_versions()
    rows = [f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in versions.items()]
    prow = []
    for k, v in sorted(result.params.items(), key=lambda kv: str(kv[0])):
        text = v if isinstance(v, str) else json.dumps(v, default=str)
        if len(text) > 300:
            text = text[:300] + " ..."
        prow.append(f"<tr><td>{_esc(k)}</td><td>{_esc(text)}</td></tr>")
    if not prow:
        prow = ["<tr><td colspan=2>(the result records no parameters)</td></tr>"]
    return ('<section id="parameters"><h2>Parameters and versions</h2><div class="grid2">'
            '<div><h3>Run parameters</h3><div class="tablewrap"><table class="params"><tbody>'
            + "".join(prow) + "</tbody></table></div></div>"
            '<div><h3>Package versions (this report)</h3><div class="tablewrap"><table class="params"><tbody>'
            + "".join(rows) + "</tbody></table></div></div></div></section>\n")


def _overview_section(result: Result) -> str:
    C = result.n_classes
    parts = ['<section id="overview"><h2>Overview</h2>']
    parts.append(_figure_html(
        plot.ofivs(result), "OFIV of all classes",
        "OFIV of every class (rows) and channel (columns). Red channels push the class score up, blue ones down."))
    if C > 1:
        parts.append(_figure_html(
            plot.bic(result), "chosen mixture components",
            "Number of Gaussian mixture components chosen by BIC on each class's IL scores "
            "(1 = all channels additive)."))
    parts.append(_figure_html(
        plot.convergence(result), "gradient ascent convergence",
        "Objective of every restart along the ascent (a restart's line stops when it converged), "
        "and the steps each restart took."))
    parts.append("</section>\n")
    return "".join(parts)


def _similarity_section(result: Result, matrices: dict[str, np.ndarray]) -> str:
    names = list(result.class_names)
    C = len(names)
    parts = ['<section id="similarity"><h2>Class similarity</h2>']
    if matrices:
        parts.append(_figure_html(
            plot.similarity_panels(matrices, names), "similarity matrices",
            "Class similarity as Pearson correlation of non-negative OFIVs (the paper's measure), beside "
            "the views it is compared with where available: label correlation, full-OFIV correlation and "
            "last-layer weight cosine (paper Fig. 4b)."))
    main = matrices.get("class_similarity", next(iter(matrices.values()), None))
    if main is not None and C >= 3:
        parts.append(_figure_html(
            plot.clustered_heatmap(main, names), "clustered class similarity",
            "Class similarity reordered by hierarchical clustering (average linkage on 1 - similarity)."))
        parts.append(_figure_html(
            plot.cluster_panels(main, names, labels_corr=matrices.get("label_correlation")), "cluster panels",
            "The most cohesive clusters: similarity sub-matrix"
            + (" beside the label correlation of the same classes (paper Fig. 9)." if "label_correlation" in matrices
               else " (pass labels to write_report to see the label correlation beside it).")))
    if C >= 2:
        pairs = _difference_pairs(main, C)
        parts.append('<h3>Class difference maps</h3><div class="grid2">')
        for a, b in pairs:
            parts.append(_figure_html(
                plot.difference(result, int(result.classes[a]), int(result.classes[b])),
                f"difference {names[a]} - {names[b]}",
                f"D = OFIV({_esc(names[a])}) - OFIV({_esc(names[b])})"
                + (f", class similarity {main[a, b]:.2f}: what separates two classes that share features."
                   if main is not None else ".")))
        parts.append("</div>")
    if not matrices and C < 2:
        parts.append("<p>One class only: nothing to compare.</p>")
    parts.append("</section>\n")
    return "".join(parts)


def _difference_pairs(similarity: np.ndarray | None, C: int, n: int = 3) -> list[tuple[int, int]]:
    if similarity is None:
        return [(0, 1)]
    s = np.nan_to_num(np.asarray(similarity, dtype=float), nan=-np.inf)
    iu = np.triu_indices(C, k=1)
    order = np.argsort(-s[iu], kind="stable")[:n]
    return [(int(iu[0][o]), int(iu[1][o])) for o in order]


def _index_section(result: Result, section_rows: set[int]) -> str:
    rows = []
    ofiv = np.asarray(result.ofiv, dtype=float)
    names = list(result.channel_names)
    for i, name in enumerate(result.class_names):
        order = np.argsort(-ofiv[i], kind="stable")
        pos = [names[k] for k in order[:3] if ofiv[i, k] > 0]
        neg = [names[k] for k in order[::-1][:3] if ofiv[i, k] < 0]
        link = f'<td><a href="#class-{i}">section</a></td>' if i in section_rows else "<td></td>"
        rows.append(
            _cell(i, i, "num") + _cell(int(result.classes[i]), int(result.classes[i]), "num") + _cell(name)
            + _cell(int(result.n_components[i]), int(result.n_components[i]), "num")
            + _cell(int(np.asarray(result.non_additive[i]).sum()), int(np.asarray(result.non_additive[i]).sum()), "num")
            + _cell(", ".join(pos)) + _cell(", ".join(neg))
            + _num(float(np.mean(result.scores[i])), 3) + link)
    return ('<section id="index"><h2>All classes</h2>'
            "<p>Click a column header to sort; type to filter.</p>"
            + _table("class-index", ["#", "output", "class", "components", "non-additive", "top + channels",
                                     "top \u2212 channels", "mean score", "details"], rows, filter_box=True)
            + "</section>\n")


def _channel_rows(result: Result, i: int, channels: Iterable[int], best: list[tuple[str, float, str]],
                  with_class: bool) -> list[str]:
    rows = []
    for k in channels:
        k = int(k)
        na = bool(result.non_additive[i, k])
        category = str(categories(na, result.consistent_sign[i, k]))
        target, p, listing = best[k]
        row = ""
        if with_class:
            row += _cell(result.class_names[i])
        row += (_cell(result.channel_names[k]) + _num(result.ofiv[i, k], 3, signed=True)
                + _num(result.inconsistency[i, k], 3) + _num(float(np.mean(result.fivs[i, :, k])), 3, signed=True)
                + _cell(category))
        if any(b[0] for b in best):
            row += _cell(listing, target) + (_num(p, 2) if target else '<td class="num" data-sort=""></td>')
        rows.append(row)
    return rows


def _channel_headers(with_class: bool, with_motifs: bool) -> list[str]:
    h = (["class"] if with_class else []) + ["channel", "OFIV", "IL", "mean FIV", "category"]
    return h + (["JASPAR matches (p)", "best p-value"] if with_motifs else [])


def _channels_section(result: Result, best: list[tuple[str, float, str]]) -> str:
    with_motifs = any(b[0] for b in best)
    imp = []
    for i in range(result.n_classes):
        top = np.argsort(-np.abs(np.nan_to_num(result.ofiv[i])), kind="stable")[:5]
        imp += _channel_rows(result, i, top, best, with_class=True)
    ci, ck = np.nonzero(np.asarray(result.non_additive, dtype=bool))
    order = np.argsort(-np.nan_to_num(np.asarray(result.inconsistency, dtype=float)[ci, ck]), kind="stable")
    shown = order[:_MAX_NONADDITIVE_ROWS]
    nonadd = [row for n in shown for row in _channel_rows(result, int(ci[n]), [int(ck[n])], best, with_class=True)]
    parts = ['<section id="channels"><h2>Important and non-additive channels</h2>',
             "<h3>Top 5 channels of every class by |OFIV|</h3>",
             _table("important-channels", _channel_headers(True, with_motifs), imp, filter_box=True),
             "<h3>Non-additive channels</h3>"]
    if len(order) > len(shown):
        parts.append(f'<p class="note">{len(order)} non-additive (class, channel) pairs; the {len(shown)} with the '
                     "highest IL are listed (all of them are in the result's <code>non_additive</code> array).</p>")
    if nonadd:
        parts.append(_table("nonadditive-channels", _channel_headers(True, with_motifs), nonadd, filter_box=True))
    else:
        parts.append("<p>No class has non-additive channels: every class's IL scores are best fitted by a "
                     "single mixture component (additive logic).</p>")
    if not with_motifs:
        parts.append('<p class="note">Pass <code>motif_matches</code> (columns channel, target, p-value) to list '
                     "the JASPAR motifs each channel matches.</p>")
    parts.append("</section>\n")
    return "".join(parts)


def _class_section(result: Result, i: int, pwms: np.ndarray | None, best: list[tuple[str, float, str]]) -> str:
    name = result.class_names[i]
    n_na = int(np.asarray(result.non_additive[i]).sum())
    facts = [(int(result.classes[i]), "output index"), (int(result.n_components[i]), "mixture components"),
             (n_na, "non-additive channels"), (f"{float(np.max(result.scores[i])):.3g}", "best class score"),
             (f"{float(np.mean(result.steps[i])):.0f}", "mean ascent steps")]
    parts = [f'<section id="class-{i}"><h2>Class {_esc(name)}</h2><ul class="facts">']
    parts += [f"<li><b>{_esc(v)}</b><span>{_esc(k)}</span></li>" for v, k in facts]
    parts.append("</ul>")
    parts.append(_figure_html(
        plot.ensemble(result, int(result.classes[i]), pwms=pwms), f"FIV ensemble of {name}",
        "Each row is one restart of the gradient ascent (w = its weight); circle area ~ |FIV|, red positive, "
        "blue negative. Below: inconsistency level (darker and larger = more inconsistent) and the OFIV. "
        "Stars mark non-additive channels (paper Fig. 2)."
        + (" Lines above them join the top significant interacting channel pairs (red synergy, blue antagonism)."
           if result.interactions is not None else ""), dpi=80))
    parts.append(_interactions_html(result, i))
    parts.append(_figure_html(
        plot.bic(result, int(result.classes[i]), histogram=False), f"BIC of {name}",
        "BIC of Gaussian mixtures with 1-3 components on the IL scores; the star is the chosen number."))
    top = np.argsort(-np.abs(np.nan_to_num(result.ofiv[i])), kind="stable")[:_TOP_PER_CLASS]
    channels = list(top) + [k for k in np.flatnonzero(result.non_additive[i]) if k not in set(top)]
    parts.append(f"<h3>Top {len(top)} channels by |OFIV|" + (" and the non-additive ones" if n_na else "") + "</h3>")
    parts.append(_table(f"channels-{i}", _channel_headers(False, any(b[0] for b in best)),
                        _channel_rows(result, i, channels, best, with_class=False)))
    parts.append("</section>\n")
    return "".join(parts)


def _groups_section(result: Result) -> str:
    """The motif groups of the interaction analysis: word, channels, PWM logo (as the network reads it), copies and
    best JASPAR matches ('' without interactions)."""
    ix = result.interactions
    if ix is None:
        return ""
    from .logos import logo_image

    parts = ['<section id="motif-groups"><h2>Motif groups</h2>',
             "<p>The motifs the network reads at the layer (the interaction analysis's players): each group's word, "
             "its channels, its PWM as the network reads it (the read with each base at each column, above the "
             "worst base's) and its best JASPAR matches by Tomtom (q: Benjamini-Hochberg over the targets).</p>"]
    rows = []
    table = groups_long(ix)
    for r in table.to_dict("records"):
        g = int(r["group"])
        logo = ""
        if ix.group_pwms is not None:
            pwm = ix.group_pwms[g][:, ix.group_pwms[g].sum(0) > 0]
            data, width = _png_image(logo_image(pwm))
            logo = f'<img src="data:image/png;base64,{data}" alt="logo of group {g}" width="{width}">'
        matches = "; ".join(f"{r[f'match_{n}']} (p={_fmt(r[f'match_{n}_p'], 2)}, q={_fmt(r[f'match_{n}_q'], 2)})"
                            for n in range(1, 4) if isinstance(r.get(f"match_{n}"), str))
        rows.append(_cell(g, g) + _cell(r["word"]) + _cell(r["channels"]) + f"<td>{logo}</td>"
                    + _cell(r.get("copy_of", "")) + _cell(matches or "-"))
    parts.append(_table("motif-groups-table", ["group", "word", "channels", "PWM", "copy of", "JASPAR matches"],
                        rows, filter_box=len(rows) > 10))
    parts.append("</section>\n")
    return "".join(parts)


def _png_image(image: np.ndarray) -> tuple[str, int]:
    """An RGBA image (h, w, 4) uint8 as base64 PNG and its width."""
    import matplotlib.image

    buf = io.BytesIO()
    matplotlib.image.imsave(buf, image, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii"), int(image.shape[1])


def _interactions_html(result: Result, i: int) -> str:
    """The class's interaction heatmap and the truth tables of its top motif-group pairs ('' without interactions)."""
    from . import interactions as ivz

    ix, output, name = result.interactions, int(result.classes[i]), result.class_names[i]
    if ix is None or output not in ix.classes:
        return ""
    parts = ["<h3>Feature interactions</h3>"]
    if len(ix.table(output, level="group", top=1)) == 0:
        return "".join(parts) + ("<p>No motif-group pair was evaluated for this class (too few players with an "
                                 "effect).</p>")
    parts.append(_figure_html(
        ivz.heatmap(ix, output, level="group"), f"interaction heatmap of {name}",
        "Interactions between motif groups (channels that detect one motif), clustered; red synergy, blue "
        "antagonism, grey not evaluated; dots: significant pairs (Benjamini-Hochberg q-value below "
        f"{ix.significance:g}).", dpi=80))
    parts.append(_figure_html(
        ivz.truth_tables(ix, output, top=4, level="group"), f"truth tables of {name}",
        "Truth tables of the top pairs by |interaction|: mean output with each group off/on (* significant by "
        "q-value).", dpi=80))
    return "".join(parts)


# --------------------------------------------------------------------------- entry point

@declare(result=Via(lambda value, argument: check_result(value), "a deepresolve.results.Result", wrong={"ofiv": 1}),
         out_path=OutputFile(), pwms=OptionalOf(Array(("K", 4, "w"))),
         motif_matches=OptionalOf(Instance(pd.DataFrame, "a pandas DataFrame")), labels=OptionalOf(Array()),
         model=OptionalOf(Instance(nn.Module, "a torch nn.Module")), max_class_sections=Int(minimum=0),
         similarity=OptionalOf(Instance(Mapping, "a dict of name -> (C, C) array")), title=OptionalOf(Text()))
def write_report(
    result: Result,
    out_path: str | Path,
    pwms: np.ndarray | None = None,
    motif_matches: pd.DataFrame | None = None,
    labels: np.ndarray | None = None,
    model: Any = None,
    max_class_sections: int = 50,
    similarity: Mapping[str, np.ndarray] | None = None,
    title: str | None = None,
) -> Path:
    """Write one self-contained HTML report of ``result`` and return its path.

    Parameters
    ----------
    result : Result
    out_path : str or Path
        The ``.html`` file to write (parent folders are created). Written to a temporary file in
        the same folder first and renamed into place when complete.
    pwms : (K, 4, w) array, optional
        One matrix per channel, drawn as a sequence logo under the channel in each class's ensemble figure.
    motif_matches : DataFrame, optional
        Channel-motif matches (columns ``channel``, ``target``/``name``, ``p-value``), e.g. from Tomtom
        against JASPAR; the channel tables list the best three per channel.
    labels : (N, C) or (N, n_outputs) array, optional
        Label matrix; adds the label-correlation view.
    model : torch.nn.Module, optional
        Adds the cosine of its last-layer weight rows as a view.
    max_class_sections : int
        At most this many classes get a section with figures (classes with non-additive channels
        first); all classes are listed in the index table.
    similarity : dict of name -> (C, C) array, optional
        Precomputed matrices (keys as in :func:`deepresolve.viz.plot.similarity_panels`); by default they
        are computed with :mod:`deepresolve.similarity`.
    title : str, optional
    """
    pwms = _check_pwms(pwms, result.n_channels)
    matches = None if motif_matches is None else normalise_motif_matches(motif_matches, list(result.channel_names))
    best = _best_matches(matches, result.n_channels)
    title = title or f"DeepResolve report: {result.layer_label if result.layer else 'layer'}"
    notes: list[str] = []
    cosine = None if model is None else _weight_cosine(result, model)
    matrices = _similarity_matrices(result, labels, cosine, similarity, notes)
    section_rows = _section_rows(result, max_class_sections, notes)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def write(f: IO[bytes]) -> None:
        text = io.TextIOWrapper(f, encoding="utf-8")
        try:
            _write_document(text, result, title, stamp, notes, matrices, section_rows, pwms, best)
        finally:
            text.detach()  # flushes, and leaves f open for write_atomic to sync and close

    out_path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(out_path, write)


def _write_document(f: IO[str], result: Result, title: str, stamp: str, notes: list[str],
                    matrices: dict[str, np.ndarray], section_rows: list[int], pwms: np.ndarray | None,
                    best: list[tuple[str, float, str]]) -> None:
    C, T, K = result.fivs.shape
    f.write(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<link rel=\"icon\" href=\"data:,\">"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<header><h1>{_esc(title)}</h1><p>{C} classes x {T} restarts x {K} channels &middot; "
        f"generated {_esc(stamp)} by deepresolve {_esc(package_versions(['deepresolve'])['deepresolve'])}"
        "</p></header>\n"
        '<nav><a href="#summary">Summary</a><a href="#parameters">Parameters</a><a href="#overview">Overview</a>'
        '<a href="#similarity">Similarity</a><a href="#index">All classes</a><a href="#channels">Channels</a>'
        + ('<a href="#motif-groups">Motif groups</a>' if result.interactions is not None else "")
        + (f'<a href="#class-{section_rows[0]}">Class sections</a>' if section_rows else "")
        + "</nav>\n<main>\n")
    steps: list[Callable[[], str]] = [
        lambda: _summary_section(result, notes, title),
        lambda: _params_section(result),
        lambda: _overview_section(result),
        lambda: _similarity_section(result, matrices),
        lambda: _index_section(result, set(section_rows)),
        lambda: _channels_section(result, best),
        lambda: _groups_section(result),
    ]
    steps += [lambda i=i: _class_section(result, i, pwms, best) for i in section_rows]
    for make in steps:
        f.write(make())
        f.flush()
    f.write(f"</main><footer>deepresolve report &middot; self-contained file, works offline</footer>"
            f"<script>{_JS}</script></body></html>\n")
