"""The alternatives matrix: one coloured, lettered cell per run, by verdict (works / events lost /
memory corrupted / guest crash), rows by fix, columns by whatever else varies."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.image import AxesImage

from ..trace import VERDICTS
from .style import (
    FONT,
    SMALL,
    TITLE,
    VERDICT_COLOURS,
    VERDICT_SHORT,
    Label,
    Setters,
    TextPool,
    View,
    _cmap,
    _legend,
    _lines,
    _new_axes,
    _plain,
    ink_on,
)


@dataclass(repr=False)
class MatrixArtists(View):
    """What ``draw_alternatives_matrix`` made, for ``update_alternatives_matrix``."""

    ax: Axes
    image: AxesImage  # one cell per (row label, column label): the verdict's index in VERDICTS, NaN if none
    texts: TextPool  # the verdict, short, in each cell
    rules: LineCollection  # white lines between cells
    row_labels: list[str] = field(default_factory=list)
    col_labels: list[str] = field(default_factory=list)
    set: Setters = field(default_factory=Setters)

    def changing(self) -> list[Artist]:
        """What differs from one set of rows to the next (a dashboard redraws only these)."""
        return [self.image, self.rules, *self.texts.texts]


OUTCOME_FIELDS = frozenset({"verdict", "summary", "sent", "delivered", "lost", "stray_writes", "crash",
                            "corrupted_frames", "first_loss_step", "first_corruption_step", "crash_step",
                            "channels_closed", "outcome", "hosts", "ignored", "not_run", "meta"})
ROW_KEYS = ("fix", "errno")
COLUMN_ORDER = ("old_xen", "xen", "guest_fallback")


def matrix_cells(rows: Iterable[object]) -> tuple[list[str], list[str], dict[tuple[str, str], str], str, str]:
    """Pivot runs into (row labels, column labels, {(row, column): verdict}, row title, column title).

    Rows are fix (plus errno where a fix was run with several), columns every other parameter
    that varies (host pair, then guest fallback, then the rest)."""
    dicts = [_row_dict(r) for r in rows]
    for d in dicts:
        if d.get("verdict") not in VERDICTS:
            raise ValueError(f"row {d} has no verdict among {', '.join(VERDICTS)}")
    keys = [k for k in dict.fromkeys(k for d in dicts for k in d) if k not in OUTCOME_FIELDS]
    varying = [k for k in keys if len({str(d.get(k)) for d in dicts}) > 1]
    row_keys = [k for k in ROW_KEYS if k in varying or (k == "fix" and k in keys)]
    col_keys = sorted((k for k in varying if k not in row_keys),
                      key=lambda k: COLUMN_ORDER.index(k) if k in COLUMN_ORDER else len(COLUMN_ORDER))
    multi = _errnos_per_fix(dicts) if "errno" in row_keys else {}
    cells = {(_row_label(d, row_keys, multi), _col_label(d, col_keys)): str(d["verdict"]) for d in dicts}
    row_labels = _ordered(dicts, [r for r, _ in cells], lambda d: _row_label(d, row_keys, multi), row_keys)
    col_labels = _ordered(dicts, [c for _, c in cells], lambda d: _col_label(d, col_keys), col_keys)
    return row_labels, col_labels, cells, " / ".join(row_keys), _col_title(col_keys)


def _row_dict(row: object) -> dict[str, object]:
    """A flat dict from a mapping, a sweep Row (``as_dict``), a Trace or any dataclass."""
    if isinstance(row, Mapping):
        d = dict(row)
    elif hasattr(row, "as_dict"):
        d = dict(row.as_dict())
    elif dataclasses.is_dataclass(row):
        d = {f.name: getattr(row, f.name) for f in dataclasses.fields(row) if f.name != "records"}
    else:
        d = dict(vars(row))
    params = d.pop("params", None)
    if params is not None:
        d.update(dict(params) if not dataclasses.is_dataclass(params) else dataclasses.asdict(params))
    outcome = d.get("outcome")
    if "verdict" not in d and hasattr(outcome, "verdict"):
        d["verdict"] = outcome.verdict
    return d


def _errnos_per_fix(dicts: list[dict]) -> set[str]:
    """The fixes run with more than one errno: only their rows name the errno."""
    seen: dict[str, set[str]] = {}
    for d in dicts:
        seen.setdefault(str(d.get("fix")), set()).add(str(d.get("errno")))
    return {fix for fix, errnos in seen.items() if len(errnos) > 1}


def _row_label(d: dict, keys: list[str], multi: set[str]) -> str:
    parts = [str(d.get(k)) for k in keys if k != "errno" or str(d.get("fix")) in multi or "fix" not in keys]
    return " / ".join(parts) or "all"


def _col_label(d: dict, keys: list[str]) -> str:
    """Values one per line; an old and a new host read ``4.3 -> 4.4``."""
    parts = [str(d.get(k)) for k in keys if k not in ("old_xen", "xen")]
    hosts = [str(d.get(k)) for k in ("old_xen", "xen") if k in keys]
    return "\n".join(["\u2192".join(hosts)] * bool(hosts) + parts) or "all"


def _col_title(keys: list[str]) -> str:
    hosts = [k for k in ("old_xen", "xen") if k in keys]
    return " / ".join([" \u2192 ".join(hosts)] * bool(hosts) + [k for k in keys if k not in hosts])


def _ordered(dicts: list[dict], present: list[str], label, keys: list[str]) -> list[str]:
    """Labels ordered by each key's values in order of first appearance (input order within)."""
    firsts = {k: list(dict.fromkeys(str(d.get(k)) for d in dicts)) for k in keys}
    rank = {}
    for d in dicts:
        rank.setdefault(label(d), tuple(firsts[k].index(str(d.get(k))) for k in keys))
    return sorted(dict.fromkeys(present), key=lambda lab: rank[lab])


def draw_alternatives_matrix(rows: Iterable[object], ax: Axes | None = None,
                             title: str = "Each alternative's outcome") -> MatrixArtists:
    """A coloured table, one cell per run, coloured and lettered by verdict."""
    rows = list(rows)
    if ax is None:
        row_labels, col_labels, *_ = matrix_cells(rows)
        ax = _new_axes(2.0 + 0.25 * len(row_labels) + (0.8 if len(col_labels) > 12 else 0.3))
    image = ax.imshow(np.zeros((1, 1)), cmap=_cmap([VERDICT_COLOURS[v] for v in VERDICTS]), vmin=-0.5,
                      vmax=len(VERDICTS) - 0.5, interpolation="nearest", aspect="auto")
    a = MatrixArtists(ax, image, TextPool(ax), _lines(ax, colors="white", linewidths=1.5))
    _plain(ax)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_title(title, fontsize=TITLE)
    _legend(ax, [(f"{v} ({VERDICT_SHORT[v]})", {"facecolor": VERDICT_COLOURS[v]}) for v in VERDICTS]
            + [("not run", {"facecolor": "white"})], loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=5)
    update_alternatives_matrix(a, rows)
    return a


def update_alternatives_matrix(a: MatrixArtists, rows: Iterable[object]) -> None:
    """Show ``rows`` in the artists ``draw_alternatives_matrix`` made."""
    row_labels, col_labels, cells, row_title, col_title = matrix_cells(rows)
    grid = np.full((len(row_labels), len(col_labels)), np.nan)
    texts = []
    for (r, c), verdict in cells.items():
        i, j = row_labels.index(r), col_labels.index(c)
        grid[i, j] = VERDICTS.index(verdict)
        texts.append(Label(j, i, VERDICT_SHORT[verdict], {"color": ink_on(VERDICT_COLOURS[verdict])}))
    nr, nc = grid.shape
    a.image.set_data(grid)
    a.image.set_extent((-0.5, nc - 0.5, nr - 0.5, -0.5))
    a.texts.show(texts)
    a.rules.set_segments([[(j - 0.5, -0.5), (j - 0.5, nr - 0.5)] for j in range(1, nc)]
                         + [[(-0.5, i - 0.5), (nc - 0.5, i - 0.5)] for i in range(1, nr)])
    a.row_labels, a.col_labels = row_labels, col_labels
    a.set(a.ax.set_xticks, list(range(nc)), col_labels, fontsize=SMALL, rotation=90 if nc > 12 else 0)
    a.set(a.ax.set_yticks, list(range(nr)), row_labels, fontsize=SMALL)
    a.set(a.ax.set_xlim, -0.5, nc - 0.5)
    a.set(a.ax.set_ylim, nr - 0.5, -0.5)
    a.set(a.ax.set_xlabel, col_title, fontsize=FONT)
    a.set(a.ax.set_ylabel, row_title, fontsize=FONT)


def alternatives_matrix(rows: Iterable[object], ax: Axes | None = None,
                        title: str = "Each alternative's outcome") -> MatrixArtists:
    """The alternatives matrix of ``rows`` (see ``draw_alternatives_matrix``); it displays as its figure."""
    return draw_alternatives_matrix(rows, ax, title)
