"""What the datasets tab has chosen (a dataset, a version) and the result lines that answer it; the base of its
parts (files.py, actions.py, datasets.py)."""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as W

from ...engine.formatting import human_time
from . import words
from .parts import Confirm


class Selection:
    """The dataset and version chosen, shared by the datasets tab's parts; DatasetsTab (datasets.py) sets them."""

    panel: Any
    engine: Any
    datasets: list
    versions: list
    choice: W.Dropdown
    version: W.Dropdown
    want: tuple | None  # (dataset id, version) to choose once the lists show it (one just saved)
    # A result line belongs to what was chosen when its action ran: widget -> (scope, key), see _drop_stale.
    made_for: dict[int, tuple]
    # Set while the panel itself changes a selection, in the thread that changes it: a person's choice arrives in
    # the kernel's own thread meanwhile (while a reading shows other lists) and must not be taken for one.
    _local: threading.local

    @property
    def _quiet(self) -> bool:
        return getattr(self._local, "quiet", False)

    @_quiet.setter
    def _quiet(self, value: bool) -> None:
        self._local.quiet = value

    def dataset(self):
        return next((d for d in self.datasets if d.id == self.choice.value), None)

    def chosen_version(self):
        return next((v for v in self.versions if v.ref == self.version.value), None)

    @staticmethod
    def _version_label(v) -> str:
        tags = words.TAGS.format(tags=", ".join(v.tags)) if v.tags else ""
        message = words.MESSAGE.format(message=v.message) if v.message else ""
        return words.VERSION_OPTION.format(
            version=v.version, tags=tags, when=human_time(v.dt_committed), message=message
        )

    def named(self, version: str | None, d=None) -> str:
        """A version as a person knows it, as the successes name it: `name:version (tags)`, the tags as now."""
        d = d or self.dataset()
        tags = next((o.tags for o in self.versions if o.version == version), ())
        return f"{d.name if d else ''}:{version}" + (words.TAGS.format(tags=", ".join(tags)) if tags else "")

    # -- results belong to the selection they were made for -------------------------------------------------------
    def _key(self, scope: str):
        """What a result line of `scope` answers: the dataset, the version, or the version with its tags (a line
        that names the tags, e.g. Loaded mnist:dyk57l5 (tag v1))."""
        d, v = self.dataset(), self.chosen_version()
        if scope == "dataset":
            return d.id if d else None
        if scope == "version":
            return v.ref if v else None
        return (v.ref, v.tags) if v else None

    def _scoped(self, widget: W.HTML, scope: str, *closes) -> W.HTML:
        """`widget` now answers the selection of `scope` as it is; `closes`: its question, its bar."""
        self.made_for[id(widget)] = (widget, scope, self._key(scope), closes)
        return widget

    def _drop_stale(self) -> None:
        """Clear every result line (with its question and bar) whose selection is no longer the one shown."""
        for key, (widget, scope, made, closes) in list(self.made_for.items()):
            if made != self._key(scope):
                self.made_for.pop(key, None)
                widget.value = ""
                for part in closes:
                    (part.close if isinstance(part, Confirm) else part.hide)()
