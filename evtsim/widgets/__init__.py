"""Dashboards: ipywidgets controls that choose what to run or show, and views updated in place.

Presentation only (architecture.md, "Boundaries"): a dashboard runs scenarios through
``run_scenario`` and shows their frozen records with the ``plots.draw_X`` / ``update_X`` pairs;
moving the step slider only indexes the trace. The playgrounds act on one live guest, as a
learner's own kernel code would, and show a fresh snapshot after each action.

Each view sits in a ``Pane``: its own figure and the widget that shows it (an ``Image`` under
the inline backend, Voila and static docs; the figure's own canvas under ipympl). A pane redraws
only what changed, fast enough to follow a slider (``canvas`` explains how).

``trace_player`` walks any trace (an explorer's counterexample, one atomic step per record) on
the view of its guest's ABI. ``reveal`` is the check that ends each "Predict, then reveal"
exercise of the notebooks.
"""

from .canvas import Pane
from .dashboard import Dashboard
from .hibernation import HibernationDashboard, hibernation_dashboard
from .player import TracePlayer, trace_player
from .playground import Playground, fifo_playground, two_level_playground
from .reveal import reveal

__all__ = ["Dashboard", "HibernationDashboard", "Pane", "Playground", "TracePlayer", "fifo_playground",
           "hibernation_dashboard", "reveal", "trace_player", "two_level_playground"]
