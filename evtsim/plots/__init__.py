"""Pictures of evtsim's frozen state: 2-level bitmaps, FIFO queues, frames, timelines, matrices.

Presentation only (architecture.md, "Boundaries"): every view reads a ``DomainSnapshot``, a
``Trace`` or the rows of an alternatives matrix, never a live ``Xen``; the core never imports
this package.

Each view is a pair, so a widget can move through a trace without rebuilding its figure::

    artists = draw_two_level(snapshot, ax=None)   # makes the artists once; artists.ax is the Axes
    update_two_level(artists, other_snapshot)     # changes those same artists in place
    artists.ax.figure.canvas.draw_idle()

``draw_X`` makes empty containers (images, collections, pools of texts) and calls ``update_X``
to fill them, so the two can never disagree. ``update_X`` only calls setters (``set_data``,
``set_verts``, ``set_segments``, ``set_text``, ``set_facecolor``...): texts come from a pool
that grows when needed and hides what it does not use. Updating costs about half a full replot
(ecosystem.md section 7). The short forms ``two_level(snapshot, ax=None)`` and so on do the
same; what every one of them returns (a ``View``) displays as its figure in a notebook, and
has ``.ax`` and ``.figure``.

With ``ax=None`` a new ``matplotlib.figure.Figure`` with an Agg canvas is made: no pyplot, so it
renders headless, and Jupyter's inline backend displays it. A widget passes its own ``ax``.
One style throughout: the Okabe-Ito palette (colour-blind safe), colour never the only cue
(hatches, letters), one legend per plot, no text under 8 pt on figures about 9 in wide.
"""

from .bitmaps import TwoLevelArtists, draw_two_level, two_level, update_two_level
from .frames import FrameMapArtists, draw_frame_map, frame_map, update_frame_map
from .matrix import (
    MatrixArtists,
    alternatives_matrix,
    draw_alternatives_matrix,
    matrix_cells,
    update_alternatives_matrix,
)
from .queues import FifoArtists, draw_fifo_queues, fifo_queues, update_fifo_queues
from .style import (
    COLOURS,
    EVENT_STATES,
    GREY,
    MIN_CONTRAST,
    OKABE_ITO,
    TITLE,
    VERDICT_COLOURS,
    WIDTH,
    Label,
    TextPool,
    View,
    contrast_ratio,
    ink_on,
)
from .timelines import TimelineArtists, draw_timeline, timeline, update_timeline

__all__ = ["COLOURS", "EVENT_STATES", "GREY", "MIN_CONTRAST", "OKABE_ITO", "TITLE", "VERDICT_COLOURS", "WIDTH",
           "FifoArtists", "FrameMapArtists", "Label", "MatrixArtists", "TextPool", "TimelineArtists",
           "TwoLevelArtists", "View", "alternatives_matrix", "contrast_ratio", "draw_alternatives_matrix",
           "draw_fifo_queues", "draw_frame_map", "draw_timeline", "draw_two_level", "fifo_queues", "frame_map",
           "ink_on", "matrix_cells", "timeline", "two_level", "update_alternatives_matrix", "update_fifo_queues",
           "update_frame_map", "update_timeline", "update_two_level"]
