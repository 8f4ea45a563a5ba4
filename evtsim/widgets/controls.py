"""The controls every dashboard builds from: one look (widths, wrapping) in one place."""

from __future__ import annotations

import ipywidgets as W

WIDE = {"description_width": "initial"}


def dropdown(description: str, options: list, value: object, tooltip: str = "", width: str = "200px") -> W.Dropdown:
    return W.Dropdown(options=options, value=value, description=description, tooltip=tooltip, style=WIDE,
                      layout=W.Layout(width=width))


def checkbox(value: bool, description: str, tooltip: str) -> W.Checkbox:
    return W.Checkbox(value, description=description, tooltip=tooltip, indent=False,
                      layout=W.Layout(width="auto", margin="0 12px"))


def button(name: str, tooltip: str, icon: str = "", width: str = "auto") -> W.Button:
    return W.Button(description=name, tooltip=tooltip, icon=icon, layout=W.Layout(width=width))


def row(*children: W.Widget) -> W.HBox:
    """Controls side by side, wrapping onto a new line in a narrow notebook."""
    return W.HBox(children, layout=W.Layout(flex_flow="row wrap", align_items="center"))
