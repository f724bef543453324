"""Thin ipywidgets wrappers over plain functions.

Every widget in the course is ``explorer(fn, name=slider, ...)`` where ``fn(**values)``
is a plain function returning ``(text, figure)``. A checked notebook cell calls the same
``fn`` directly, so nbval tests what the slider shows, and the browser test
(``tests/test_browser.py``) checks that moving a slider changes both.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.figure import Figure

__all__ = ["explorer", "float_slider", "int_slider", "select"]

View = tuple[str, Figure | None]


def int_slider(
    value: int, min: int, max: int, step: int = 1, description: str = ""
) -> widgets.IntSlider:
    """An IntSlider that updates on release (a forward pass per drag step would lag)."""
    return widgets.IntSlider(
        value=value, min=min, max=max, step=step, description=description, continuous_update=False
    )


def float_slider(
    value: float, min: float, max: float, step: float = 0.05, description: str = ""
) -> widgets.FloatSlider:
    """A FloatSlider that updates on release."""
    return widgets.FloatSlider(
        value=value, min=min, max=max, step=step, description=description, continuous_update=False
    )


def select(options: list, value=None, description: str = "") -> widgets.Dropdown:
    """A dropdown of fixed options (e.g. kernel sizes 3, 5, 7)."""
    return widgets.Dropdown(
        options=options, value=options[0] if value is None else value, description=description
    )


def explorer(fn: Callable[..., View], **controls: widgets.ValueWidget) -> widgets.VBox:
    """Controls above an output area that shows ``fn(**values)``: its text, then its figure.

    ``fn`` gets one keyword argument per control and returns ``(text, fig)``; the figure
    is displayed and closed (so it is not drawn twice).
    """
    for name, control in controls.items():
        if not isinstance(control, widgets.ValueWidget):
            raise TypeError(
                f"control {name!r} must be an ipywidgets value widget, got {type(control).__name__}"
            )
        if not control.description:
            control.description = name
    out = widgets.Output()

    def update(**values) -> None:
        text, fig = fn(**values)
        out.clear_output(wait=True)
        with out:
            print(text)
            if fig is not None:
                display(fig)
                plt.close(fig)

    widgets.interactive_output(update, controls)
    return widgets.VBox([*controls.values(), out])
