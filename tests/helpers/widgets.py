"""Driving ipywidgets as a browser would, and reading what they show."""

from __future__ import annotations

import json

import ipywidgets


def widget_tree(root: ipywidgets.Widget) -> list[ipywidgets.Widget]:
    """Every widget reachable from `root` through its synced traits (children, layout, style...)."""
    seen, todo = {}, [root]
    while todo:
        widget = todo.pop()
        if id(widget) in seen:
            continue
        seen[id(widget)] = widget
        for name in widget.keys:
            value = getattr(widget, name)
            todo += [
                v for v in (value if isinstance(value, (list, tuple)) else [value]) if isinstance(v, ipywidgets.Widget)
            ]
    return list(seen.values())


def state_text(root) -> str:
    return "\n".join(json.dumps(w.get_state(), default=str) for w in widget_tree(root))


def typed(widget, value) -> None:
    """What the browser does when a user types into a field and leaves it: one update from the front end."""
    widget.set_state({"value": value})
