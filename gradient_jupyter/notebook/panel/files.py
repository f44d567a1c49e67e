"""The datasets tab's view of one version: its files (a folder at a time, a small file previewed) and what
changed from the version before or from any other."""

from __future__ import annotations

import html
import threading
from threading import Thread

import ipywidgets as W

from ...commands.dataset_files import folder, folder_rows
from ...engine import history
from ...engine.formatting import human_bytes
from ...output import DiffView
from . import words
from .parts import FIELD, dropdown, heading, note, result, wide
from .selection import Selection


class VersionFiles(Selection):
    """The files browser and the changes of the chosen version (a part of DatasetsTab)."""

    def _files_widgets(self) -> list:
        """Make the files browser and the changes view; returns their lines, in the order shown."""
        self.entries: list = []
        self.files_of: str | None = None  # the version whose files `entries` are
        self.where = ""  # the folder shown
        self.diff: history.Diff | None = None  # the chosen version's changes since the version before
        self._files_lock = threading.RLock()  # a folder shown is computed and written whole: no thread's is stale
        self.files_title = W.HTML()
        self.files = W.Select(rows=8, layout=FIELD)
        self.files.add_class("gj-files")
        self.files.observe(self._file_chosen, "value")
        self.preview = wide("gj-preview")
        self.files_result = result("gj-files-result")

        self.changes = wide("gj-changes")
        self.compare = dropdown(words.COMPARE, "gj-compare")
        self.compare.observe(self._compare_chosen, "value")
        self.changes_result = result("gj-changes-result")
        return [
            heading(words.FILES_HEADING),
            self.files_title,
            self.files,
            self.files_result,
            self.preview,
            heading(words.CHANGES_HEADING),
            self.compare,
            self.changes_result,
            self.changes,
        ]

    # -- files ---------------------------------------------------------------------------------------------------
    def read_files(self, v) -> Thread | None:
        d = self.dataset()

        def work():
            entries = self.engine.datasets.list_files(d, v.version)
            with self._files_lock:
                if self.files_of != v.ref:  # a second read of the same version (a refresh) keeps the folder open
                    self.where, self.preview.value = "", ""
                self.entries, self.files_of = entries, v.ref
                self.show_folder()

        self.show_compare(v, fresh=True)
        self.read_changes()
        return self.panel.run(
            self.files_result, words.READING_FILES.format(ref=f"{d.name}:{v.version}"), work, [], refresh=False
        )

    # -- what changed: from the version before (default) or from any other version chosen ---------------------
    def show_compare(self, v, *, fresh: bool = False) -> None:
        """The versions the chosen one can be compared with: the version before it (its parent) first, then every
        other. A parent that was deleted is no choice: then none is chosen and the line asks for one."""
        parent_gone = v.parent is not None and all(o.version != v.parent for o in self.versions)
        options = []
        if not parent_gone:
            if v.parent is not None:
                label = words.COMPARE_PARENT.format(named=self.named(v.parent))
            else:  # lineage recorded and no parent: the first version; else the engine takes the one before
                label = words.COMPARE_FIRST if v.created_by is not None else words.COMPARE_BEFORE
            options.append((label, ""))
        options += [(self._version_label(o), o.ref) for o in self.versions if o.ref != v.ref]
        keep = None if fresh else self.compare.value
        values = [value for _, value in options]
        self._quiet = True
        try:
            self.compare.options = options
            self.compare.value = keep if keep in values else ("" if not parent_gone else None)
        finally:
            self._quiet = False
        if parent_gone and self.compare.value is None:
            self.changes.value, self.diff = "", None
            self.changes_result.value = note(words.REFUSALS["unknown-parent"].format(version=self.named(v.version)))

    def _compare_chosen(self, change) -> None:
        if not self._quiet:
            self.read_changes()

    def read_changes(self) -> Thread | None:
        """Read what changed (from the two manifests only, like `datasets versions diff`) for the choice shown."""
        d, v, other = self.dataset(), self.chosen_version(), self.compare.value
        if d is None or v is None or other is None:
            return None
        self.changes.value, self.diff = "", None
        label = (
            self.named(other.partition(":")[2])
            if other
            else next((shown for shown, value in self.compare.options if value == ""), "")
        )

        def changes():
            self.diff = history.diff(self.engine, other, v.ref) if other else history.diff(self.engine, v.ref)
            self.show_changes()

        return self.panel.run(
            self._scoped(self.changes_result, "version"),
            words.READING_CHANGES.format(named=self.named(v.version), other=label),
            changes,
            [],
            refresh=False,
            known=lambda exc: {"version": self.named(v.version)},
        )

    def show_changes(self) -> None:
        """The chosen version's changes, its versions named as a person knows them: the dataset's name, the tags
        as they are now (read again with every list of versions, so a tag set after the diff was read shows)."""
        d, v, diff = self.dataset(), self.chosen_version(), self.diff
        if d is None or v is None or diff is None or v.ref not in (diff.after_ref, diff.before_ref):
            return
        self.changes.value = DiffView(diff, name=lambda ref: self.named(ref.partition(":")[2]))._repr_html_()

    def show_folder(self) -> None:
        with self._files_lock:
            d, v, where = self.dataset(), self.chosen_version(), self.where
            options = [(words.FOLDER_UP, "..")] if where else []
            for path, size in folder_rows(self.entries, where):
                options.append((words.FILE_OPTION.format(name=path[len(where) :], size=size), path))
            self.files_title.value = note(
                words.FILES_IN.format(ref=f"{d.name}:{v.version}" if d and v else "", folder=where)
            )
            self._quiet = True
            try:
                self.files.options = options
                self.files.value = None
            finally:
                self._quiet = False

    def _file_chosen(self, change) -> None:
        path = change["new"]
        if self._quiet or not path:
            return
        if path == ".." or path.endswith("/"):
            with self._files_lock:
                self.where = folder(self.where.rstrip("/").rpartition("/")[0]) if path == ".." else path
                self.show_folder()
        else:
            self.show_preview(path)

    def show_preview(self, path: str) -> Thread | None:
        d, v = self.dataset(), self.chosen_version()
        entry = next(e for e in self.entries if e.path == path)

        def work():
            size = human_bytes(entry.size)
            if entry.size > words.PREVIEW_LIMIT:
                return note(words.PREVIEW_LARGE.format(path=path, size=size))
            _, chunks = self.engine.datasets.read_file(d, v.version, path)
            data = b"".join(chunks)
            try:
                shown = data.decode("utf-8")
            except UnicodeDecodeError:
                return note(words.PREVIEW_BINARY.format(path=path, size=size))
            self.preview.value = words.PREVIEW.format(path=html.escape(path), size=size, text=html.escape(shown))
            return ""

        self.preview.value = ""
        return self.panel.run(
            self._scoped(self.files_result, "version"), words.PREVIEWING.format(path=path), work, [], refresh=False
        )
