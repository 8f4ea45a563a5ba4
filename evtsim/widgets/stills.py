"""A dashboard's state as one still picture, for readers without a live kernel.

A notebook saved with its outputs keeps each dashboard's display; where nothing runs the
widgets (GitHub's notebook view, nbconvert without the widget state) a reader would see the
widgets' text repr. So each display also carries this picture (``image/png``): the banner, and
the panes as they are laid out on screen, at one pixel per CSS pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .canvas import encode_png, one_to_one
from .look import CSS_DPI

Pixels = np.ndarray  # (height, width, 4) RGBA, uint8
GAP = 8  # CSS pixels between panes


def text_strip(text: str, width: int, background: str, ink: str, points: float = 10) -> Pixels:
    """One line of bold text on a coloured strip ``width`` CSS pixels wide (the banner)."""
    fig = Figure(figsize=(width / CSS_DPI, 2.2 * points / 72), dpi=CSS_DPI, facecolor=background)
    FigureCanvasAgg(fig)
    fig.text(8 / width, 0.5, text, color=ink, fontsize=points, fontweight="bold", va="center")
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def side_by_side(pictures: Sequence[Pixels]) -> Pixels:
    """The pictures in a row, tops aligned, on white."""
    height = max(p.shape[0] for p in pictures)
    width = sum(p.shape[1] for p in pictures) + GAP * (len(pictures) - 1)
    out = np.full((height, width, 4), 255, np.uint8)
    x = 0
    for p in pictures:
        out[:p.shape[0], x:x + p.shape[1]] = p
        x += p.shape[1] + GAP
    return out


def stacked(pictures: Sequence[Pixels]) -> Pixels:
    """The pictures one under the other, left-aligned, on white."""
    width = max(p.shape[1] for p in pictures)
    height = sum(p.shape[0] for p in pictures) + GAP * (len(pictures) - 1)
    out = np.full((height, width, 4), 255, np.uint8)
    y = 0
    for p in pictures:
        out[y:y + p.shape[0], :p.shape[1]] = p
        y += p.shape[0] + GAP
    return out


def png(pixels: Pixels) -> bytes:
    return encode_png(np.ascontiguousarray(pixels))


__all__ = ["one_to_one", "png", "side_by_side", "stacked", "text_strip"]
